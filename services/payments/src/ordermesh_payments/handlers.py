"""One function per message the payments service consumes: intent → gateway → result, each call idempotent."""

from ordermesh_contracts import (
    OrderAccepted,
    PaymentAuthorizationFailed,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentCaptureFailed,
    ShipmentShipped,
    topics,
)
from ordermesh_servicekit.consuming import MessageContext

from . import store
from .adapters.gateway import PaymentGateway
from .domain.payment import amount_to_authorize, idempotency_key


class PaymentHandlers:
    """Handlers bound to the gateway they call."""

    def __init__(self, gateway: PaymentGateway) -> None:
        self._gateway = gateway

    async def on_order_accepted(self, order: OrderAccepted, ctx: MessageContext) -> None:
        """Authorizes a card order's total; other methods need no gateway here."""
        amount = amount_to_authorize(order)
        payment = dict(
            order_id=order.order_id,
            shop_id=order.shop_id,
            method=order.payment.method.value,
            currency=order.currency,
            amount=order.charges.total,
        )
        if amount is None:
            async with ctx.unit_of_work() as uow:
                await store.create_payment(uow.conn, **payment, status="not_applicable")
            return
        if await ctx.already_processed():
            return
        key = idempotency_key(order.event_id, "authorize")
        async with ctx.intent() as conn:
            await store.create_payment(conn, **payment, status="authorizing")
            await store.record_intent(conn, key=key, order_id=order.order_id, operation="authorize", amount=amount)
        result = await self._gateway.authorize(
            idempotency_key=key,
            order_id=str(order.order_id),
            amount=amount,
            currency=order.currency,
            card_token=order.payment.card_token or "",
        )
        async with ctx.unit_of_work() as uow:
            await store.record_result(uow.conn, key=key, approved=result.approved, reference=result.reference, reason=result.reason)
            if result.approved:
                await store.set_authorized(uow.conn, order.order_id, result.reference, amount)
                uow.publish(
                    topics.PAYMENTS_EVENTS,
                    PaymentAuthorized(
                        order_id=order.order_id,
                        shop_id=order.shop_id,
                        method=order.payment.method,
                        authorization_id=result.reference,
                        amount=amount,
                        currency=order.currency,
                        **order.caused(),
                    ),
                )
            else:
                await store.set_status(uow.conn, order.order_id, "authorization_failed")
                uow.publish(
                    topics.PAYMENTS_EVENTS,
                    PaymentAuthorizationFailed(
                        order_id=order.order_id, shop_id=order.shop_id, reason=result.reason, **order.caused()
                    ),
                )

    async def on_shipment_shipped(self, shipped: ShipmentShipped, ctx: MessageContext) -> None:
        """Captures the authorized amount once the whole order has shipped."""
        if not shipped.all_shipped or await ctx.already_processed():
            return
        key = idempotency_key(shipped.event_id, "capture")
        async with ctx.intent() as conn:
            payment = await store.lock_payment(conn, shipped.order_id)
            if payment is None or payment["status"] != "authorized":
                payment = None
            else:
                amount = payment["authorized_amount"]
                await store.record_intent(conn, key=key, order_id=shipped.order_id, operation="capture", amount=amount)
                await store.set_status(conn, shipped.order_id, "capturing")
        if payment is None:
            async with ctx.unit_of_work():
                return
        result = await self._gateway.capture(
            idempotency_key=key, authorization_id=payment["authorization_id"], amount=amount
        )
        async with ctx.unit_of_work() as uow:
            await store.record_result(uow.conn, key=key, approved=result.approved, reference=result.reference, reason=result.reason)
            if result.approved:
                await store.set_captured(uow.conn, shipped.order_id, amount)
                uow.publish(
                    topics.PAYMENTS_EVENTS,
                    PaymentCaptured(
                        order_id=shipped.order_id,
                        shop_id=shipped.shop_id,
                        capture_id=result.reference,
                        amount=amount,
                        currency=payment["currency"],
                        **shipped.caused(),
                    ),
                )
            else:
                await store.set_status(uow.conn, shipped.order_id, "capture_failed")
                uow.publish(
                    topics.PAYMENTS_EVENTS,
                    PaymentCaptureFailed(
                        order_id=shipped.order_id, shop_id=shipped.shop_id, reason=result.reason, **shipped.caused()
                    ),
                )
