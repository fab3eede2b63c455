"""A card order's gateway calls: the authorization when it is accepted (captured at once where the shop wants it) and
the capture once it has shipped in full (for deferred payment the shipment report). Each is a load, the decision, the
intent saved on the payment as it was loaded (or decided again), the call, and the result saved with the message's
inbox and outbox rows: three statements, none in a transaction."""

from uuid import UUID

from ordermesh_contracts import (
    Message,
    OrderAccepted,
    PaymentAuthorizationFailed,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentCaptureFailed,
    ShipmentShipped,
    topics,
)
from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext, PermanentError, TransientError, UnitOfWork
from ordermesh_servicekit.outbox import OutgoingMessage

from . import settlements, store, store_card
from .adapters.gateway import GatewayResult, Gateways, PaymentGateway
from .domain.gateway_calls import Authorization, Capture, plan_authorization, plan_capture
from .domain.payment import idempotency_key
from .handlers_deferred import DeferredPayments


def capture_result(
    order_id: UUID, shop_id: str, currency: str, key: str, amount: int, result: GatewayResult, cause: Message
) -> tuple[Message, store_card.Effect]:
    """The gateway's answer to the capture `key`, to save with the payment, and PaymentCaptured or
    PaymentCaptureFailed to publish."""
    if result.approved:
        event = PaymentCaptured(
            order_id=order_id, shop_id=shop_id, capture_id=result.reference, amount=amount, currency=currency,
            **cause.caused(),
        )
        return event, store_card.captured(order_id, key=key, capture_id=result.reference, amount=amount)
    event = PaymentCaptureFailed(order_id=order_id, shop_id=shop_id, reason=result.reason, **cause.caused())
    return event, store_card.call_refused(
        order_id, key=key, reference=result.reference, reason=result.reason, payment_status="capture_failed"
    )


async def record_capture(
    uow: UnitOfWork, order_id: UUID, shop_id: str, currency: str, key: str, amount: int, result: GatewayResult, cause: Message
) -> None:
    """Saves the gateway's answer to the capture `key` with the payment and publishes PaymentCaptured or
    PaymentCaptureFailed, in the unit of work."""
    event, effect = capture_result(order_id, shop_id, currency, key, amount, result, cause)
    await store_card.apply(uow.conn, effect)
    uow.publish(topics.PAYMENTS_EVENTS, event)


def payments_event(event: Message) -> OutgoingMessage:
    """`event` as published on the payments events topic."""
    return OutgoingMessage.of(topics.PAYMENTS_EVENTS, event)


class CardPayments:
    """The gateway calls of card orders, bound to the configured gateways and the deferred-payment provider."""

    def __init__(self, gateways: Gateways, deferred: DeferredPayments) -> None:
        self._gateways = gateways
        self._deferred = deferred

    async def authorize(self, order: OrderAccepted, payment: dict, ctx: MessageContext) -> None:
        """Authorizes the accepted order's card total under a key of this message (a redelivery whose result was not
        saved calls again with the same key): PaymentAuthorized or PaymentAuthorizationFailed; nothing at the gateway
        for an order cancelled or accepted before."""
        key = idempotency_key(order.event_id, "authorize")
        amount = order.charges.total
        basis = await store_card.authorization_facts(ctx.pool, ctx.message_id, order.order_id, order.shop_id)
        plan = plan_authorization(basis.facts, key, configured=self._gateways.names())
        if plan.step is Authorization.AUTHORIZE and not await store.save_opening_intent(
            ctx.pool, payment, existed=basis.facts.payment_exists, version=basis.version, status="authorizing",
            operation="authorize", key=key, amount=amount, gateway=plan.gateway, note=f"on the {plan.gateway} gateway",
        ):
            raise TransientError(f"order {order.order_id}'s payment changed while it was decided; decided again")
        if plan.step is Authorization.DUPLICATE:
            raise DuplicateMessage(str(ctx.message_id))
        if plan.step is Authorization.GATEWAY_MISSING:
            raise PermanentError(
                f"shop {order.shop_id} takes card payments on the {plan.gateway} gateway, "
                "which is not configured on the payments service"
            )
        if plan.step is not Authorization.AUTHORIZE:
            async with ctx.unit_of_work() as uow:
                if plan.step is Authorization.CANCELLED:
                    await store.create_payment(uow.conn, **payment, status="cancelled", cancelled=True, gateway=plan.gateway)
            return
        gateway = self._gateways.named(plan.gateway)
        result = await gateway.authorize(
            idempotency_key=key, order_id=str(order.order_id), amount=amount, currency=order.currency,
            card_token=order.payment.card_token or "",
        )
        if result.approved and plan.capture_now:
            await self._capture_at_authorization(order, ctx, gateway, key, result)
            return
        if result.approved:
            effect = store_card.authorized(order.order_id, key=key, authorization_id=result.reference, amount=amount)
        else:
            effect = store_card.call_refused(
                order.order_id, key=key, reference=result.reference, reason=result.reason, payment_status="authorization_failed"
            )
        await ctx.handled_in_one_statement([payments_event(authorization_event(order, result))], *effect)

    async def _capture_at_authorization(
        self, order: OrderAccepted, ctx: MessageContext, gateway: PaymentGateway, key: str, authorized: GatewayResult
    ) -> None:
        amount = order.charges.total
        capture_key = idempotency_key(order.event_id, "capture")
        async with ctx.intent() as conn:
            await store_card.save_authorized(conn, order.order_id, key=key, authorization_id=authorized.reference, amount=amount)
            await store_card.save_capture_intent(
                conn, order.order_id, key=capture_key, amount=amount, note="capture at authorization (shop setting)"
            )
        captured = await gateway.capture(idempotency_key=capture_key, authorization_id=authorized.reference, amount=amount)
        event, effect = capture_result(order.order_id, order.shop_id, order.currency, capture_key, amount, captured, order)
        await ctx.handled_in_one_statement([payments_event(authorization_event(order, authorized)), payments_event(event)], *effect)

    async def capture_shipped(self, shipped: ShipmentShipped, ctx: MessageContext) -> None:
        """Captures an order that has shipped in full under a key of this message: the card's amount at stake, or
        for deferred payment the shipment report to the provider; anything else is settled with nothing to pay (or
        waits for its OrderAccepted, or is left alone)."""
        key = idempotency_key(shipped.event_id, "capture")
        basis = await store_card.capture_basis(ctx.pool, ctx.message_id, shipped.order_id)
        plan = plan_capture(basis.facts)
        if plan.step is Capture.CAPTURE:
            note = f"shipment report {shipped.carrier} {shipped.tracking_number}" if plan.reports_shipment else None
            if not await store_card.save_capture_intent(
                ctx.pool, shipped.order_id, key=key, amount=plan.amount, note=note, version=basis.version
            ):
                raise TransientError(f"order {shipped.order_id}'s payment changed while its capture was decided; decided again")
        if plan.step is Capture.DUPLICATE:
            raise DuplicateMessage(str(ctx.message_id))
        if plan.step is Capture.NO_CALL:
            async with ctx.unit_of_work() as uow:
                await settlements.settle_nothing_to_pay(uow, shipped)
            return
        payment = basis.payment
        if plan.reports_shipment:
            result = await self._deferred.report_shipment(
                key=key, check_id=payment["credit_check_id"], carrier=shipped.carrier, tracking_number=shipped.tracking_number
            )
        else:
            result = await self._gateways.of(payment).capture(
                idempotency_key=key, authorization_id=payment["authorization_id"], amount=plan.amount
            )
        event, effect = capture_result(shipped.order_id, shipped.shop_id, payment["currency"], key, plan.amount, result, shipped)
        await ctx.handled_in_one_statement([payments_event(event)], *effect)


def authorization_event(order: OrderAccepted, result: GatewayResult) -> Message:
    """PaymentAuthorized for an approved authorization of the order's total, else PaymentAuthorizationFailed."""
    if not result.approved:
        return PaymentAuthorizationFailed(order_id=order.order_id, shop_id=order.shop_id, reason=result.reason, **order.caused())
    return PaymentAuthorized(
        order_id=order.order_id,
        shop_id=order.shop_id,
        method=order.payment.method,
        authorization_id=result.reference,
        amount=order.charges.total,
        currency=order.currency,
        **order.caused(),
    )
