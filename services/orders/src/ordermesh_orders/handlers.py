"""One function per message the orders service consumes: decode (done) → domain → store."""

from ordermesh_contracts import (
    MailFailed,
    MailNotApplicable,
    MailSent,
    OrderAccepted,
    OrderCompleted,
    OrderMessage,
    OrderProgressed,
    OrderRejected,
    PaymentAuthorizationFailed,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentCaptureFailed,
    PointsAccrued,
    PointsConfirmed,
    ShipmentRequested,
    ShipmentShipped,
    ShopOrderAccepted,
    ShopOrderShipped,
    ShopOrderSubmitted,
    Stage,
    StockAllocated,
    order_id_for,
    topics,
)
from ordermesh_servicekit.consuming import MessageContext, PermanentError, UnitOfWork

from . import store
from .domain.intake import address_flag, merchandise_total, rejection_reasons
from .domain.progress import OrderState, Progress, advance, initial_flags, record_flags


async def on_shop_order_submitted(submitted: ShopOrderSubmitted, ctx: MessageContext) -> None:
    """Accepts a shop's order (once per shop, channel and order number) or rejects it with every reason."""
    async with ctx.unit_of_work() as uow:
        if reasons := rejection_reasons(submitted):
            uow.publish(
                topics.SHOP_UPDATES,
                OrderRejected(
                    shop_id=submitted.shop_id,
                    channel=submitted.channel.value,
                    external_order_no=submitted.external_order_no,
                    reasons=reasons,
                    **submitted.caused(),
                ),
                key=submitted.external_order_no,
            )
            return
        order_id = order_id_for(submitted.shop_id, submitted.channel.value, submitted.external_order_no)
        accepted = OrderAccepted(
            order_id=order_id,
            shop_id=submitted.shop_id,
            channel=submitted.channel,
            external_order_no=submitted.external_order_no,
            currency=submitted.currency,
            customer=submitted.customer,
            deliveries=submitted.deliveries,
            charges=submitted.charges,
            merchandise_total=merchandise_total(submitted),
            payment=submitted.payment,
            **submitted.caused(),
        )
        state = OrderState(
            stage=Stage.REVIEW,
            payment_method=submitted.payment.method,
            flags=initial_flags(submitted.payment.method, address_flag(submitted)),
        )
        progress = advance(state)
        if not await store.insert_order(uow.conn, accepted, progress.state):
            ctx.log.info("shop order already known; ignoring the repeat")
            return
        await store.add_history(uow.conn, order_id, [("accepted", {})], actor="intake", cause_id=submitted.event_id)
        uow.publish(topics.ORDERS_EVENTS, accepted)
        uow.publish(
            topics.SHOP_UPDATES,
            ShopOrderAccepted(
                order_id=order_id,
                shop_id=submitted.shop_id,
                channel=submitted.channel,
                external_order_no=submitted.external_order_no,
                correlation_id=submitted.correlation_id,
                causation_id=accepted.event_id,
            ),
        )
        await _publish_progress(uow, order_id, submitted.shop_id, submitted.external_order_no, accepted, progress)


def _flag_handler(flags_of):
    """A handler that records the flags `flags_of(event)` returns and advances the order."""

    async def handle(event: OrderMessage, ctx: MessageContext) -> None:
        async with ctx.unit_of_work() as uow:
            order = await store.lock_order(uow.conn, event.order_id)
            if order is None:
                raise PermanentError(f"no order {event.order_id}")
            changes = flags_of(event)
            progress = record_flags(order.state, changes)
            await store.save_state(uow.conn, order.order_id, progress.state)
            await store.add_history(
                uow.conn, order.order_id, [(event.type, {"flags": changes})], actor=_owner(event), cause_id=event.event_id
            )
            if isinstance(event, ShipmentShipped):
                uow.publish(
                    topics.SHOP_UPDATES,
                    ShopOrderShipped(
                        order_id=order.order_id,
                        shop_id=order.shop_id,
                        external_order_no=order.external_order_no,
                        carrier=event.carrier,
                        tracking_number=event.tracking_number,
                        **event.caused(),
                    ),
                )
            await _publish_progress(uow, order.order_id, order.shop_id, order.external_order_no, event, progress)

    return handle


def _owner(event: OrderMessage) -> str:
    return type(event).__module__.rsplit(".", 1)[-1]


async def _publish_progress(
    uow: UnitOfWork, order_id, shop_id: str, external_order_no: str, cause: OrderMessage | ShopOrderSubmitted, progress: Progress
) -> None:
    for from_stage, to_stage in progress.transitions:
        uow.publish(
            topics.ORDERS_EVENTS,
            OrderProgressed(order_id=order_id, shop_id=shop_id, from_stage=from_stage, to_stage=to_stage, **cause.caused()),
        )
        if to_stage is Stage.COMPLETED:
            uow.publish(
                topics.ORDERS_EVENTS,
                OrderCompleted(order_id=order_id, shop_id=shop_id, external_order_no=external_order_no, **cause.caused()),
            )
    if progress.transitions:
        await store.add_history(
            uow.conn,
            order_id,
            [("progressed", {"from": f.value, "to": t.value}) for f, t in progress.transitions],
            actor="auto",
            cause_id=cause.event_id,
        )


def _mail_flag(event: MailSent | MailFailed | MailNotApplicable) -> dict[str, str]:
    status = {"MailSent": "sent", "MailFailed": "failed", "MailNotApplicable": "not_applicable"}[event.type]
    return {f"mail_{event.mail_kind.value}": status}


FLAG_HANDLERS = {
    PaymentAuthorized: _flag_handler(lambda e: {"card_authorization": "authorized"}),
    PaymentAuthorizationFailed: _flag_handler(lambda e: {"card_authorization": "error"}),
    PaymentCaptured: _flag_handler(lambda e: {"capture": "done"}),
    PaymentCaptureFailed: _flag_handler(lambda e: {"capture": "error"}),
    StockAllocated: _flag_handler(lambda e: {"allocation": e.allocation}),
    ShipmentRequested: _flag_handler(lambda e: {"shipping": "requested"}),
    ShipmentShipped: _flag_handler(lambda e: {"shipping": "shipped" if e.all_shipped else "partly_shipped"}),
    PointsAccrued: _flag_handler(lambda e: {"points": "provisional"}),
    PointsConfirmed: _flag_handler(lambda e: {"points": "confirmed"}),
    MailSent: _flag_handler(_mail_flag),
    MailFailed: _flag_handler(_mail_flag),
    MailNotApplicable: _flag_handler(_mail_flag),
}
"""Events of the other services, each turned into flag changes on the order."""
