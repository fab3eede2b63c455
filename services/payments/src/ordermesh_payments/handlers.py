"""One function per event the payments service consumes: intent → gateway → result, each call idempotent."""

from typing import Any
from uuid import UUID

import asyncpg

from ordermesh_contracts import (
    Message,
    OrderAccepted,
    OrderCancelled,
    PaymentAuthorizationFailed,
    PaymentAuthorized,
    PaymentCancellationFailed,
    PaymentCancelled,
    PaymentCaptured,
    PaymentCaptureFailed,
    PaymentMethod,
    PaymentReceived,
    PaymentRequested,
    ProviderPaymentReported,
    ShipmentDelivered,
    ShipmentShipped,
    topics,
)
from ordermesh_servicekit.consuming import MessageContext, PermanentError, UnitOfWork
from ordermesh_servicekit.parking import DependencyMissing
from ordermesh_servicekit.tracing import current_traceparent

from . import settlements, store, store_credit
from .adapters.gateway import GatewayResult, Gateways
from .domain.cancellation import (
    Action,
    CancelPlan,
    PaymentFacts,
    after_gateway,
    amount_due,
    captures_on_shipment,
    plan_cancellation,
)
from .domain.credit import reports_shipment
from .domain.edits import capture_amount
from .domain.payment import Flow, flow_for, idempotency_key, instructions_of
from .domain.received import balance_after, due_date, payment_reference
from .handlers_deferred import DeferredPayments

STATUS_BY_FLOW = {
    Flow.NONE: "not_applicable",
    Flow.CASH_ON_DELIVERY: "awaiting_delivery",
}


def due_of(payment: asyncpg.Record) -> int:
    """What the customer still owes on the payment's order (nothing once it is cancelled)."""
    return amount_due(payment["amount"], payment["cancelled_at"] is not None)


def facts_of(payment: asyncpg.Record | None) -> PaymentFacts | None:
    """The money facts of a payment row."""
    if payment is None:
        return None
    return PaymentFacts(
        method=payment["method"],
        status=payment["status"],
        amount=payment["amount"],
        authorized=payment["authorized_amount"] or 0,
        captured=payment["captured_amount"],
        refunded=payment["refunded_amount"],
        received=payment["received_amount"],
    )


def publish_received(
    uow: UnitOfWork, payment: asyncpg.Record, received_total: int, amount: int, cause: Message, **details: Any
) -> None:
    """Publishes PaymentReceived for money recorded on `payment` (received_total includes `amount`)."""
    uow.publish(
        topics.PAYMENTS_EVENTS,
        PaymentReceived(
            order_id=payment["order_id"],
            shop_id=payment["shop_id"],
            method=PaymentMethod(payment["method"]),
            amount=amount,
            received_total=received_total,
            balance=balance_after(due_of(payment), received_total),
            currency=payment["currency"],
            **details,
            **cause.caused(),
        ),
    )


class PaymentHandlers:
    """Handlers bound to the card gateways and the deferred-payment handling they call."""

    def __init__(self, gateways: Gateways, deferred: DeferredPayments) -> None:
        self._gateways = gateways
        self._deferred = deferred

    async def on_order_accepted(self, order: OrderAccepted, ctx: MessageContext) -> None:
        """Starts the order's payment: card → authorize (and capture if the shop wants it now); deferred → credit
        check; prepaid → payment instructions; paid on the platform → recorded as captured; cash on delivery and
        points only → nothing at any gateway."""
        flow = flow_for(order)
        payment = dict(
            order_id=order.order_id,
            shop_id=order.shop_id,
            method=order.payment.method.value,
            currency=order.currency,
            amount=order.charges.total,
            customer_id=order.customer.customer_id,
            card_token=order.payment.card_token,
            correlation_id=order.correlation_id,
            traceparent=current_traceparent(),
        )
        if flow is Flow.CARD:
            await self._authorize(order, payment, ctx)
            return
        if flow is Flow.DEFERRED:
            await self._deferred.start(order, payment, ctx)
            return
        if flow is Flow.PLATFORM:
            async with ctx.unit_of_work() as uow:
                await settlements.capture_on_platform(uow, order, payment)
            return
        async with ctx.unit_of_work() as uow:
            if await store.is_cancelled(uow.conn, order.order_id):
                await store.create_payment(uow.conn, **payment, status="cancelled", cancelled=True)
                return
            if flow is not Flow.PREPAID:
                await store.create_payment(uow.conn, **payment, status=STATUS_BY_FLOW[flow])
                return
            settings = await store.payment_settings(uow.conn, order.shop_id)
            reference = payment_reference(order.order_id)
            due = due_date(order.occurred_at, settings["prepaid_due_days"])
            await store.create_payment(uow.conn, **payment, status="awaiting_payment", reference=reference, due_date=due)
            uow.publish(
                topics.PAYMENTS_EVENTS,
                PaymentRequested(
                    order_id=order.order_id,
                    shop_id=order.shop_id,
                    method=order.payment.method,
                    reference=reference,
                    amount=order.charges.total,
                    currency=order.currency,
                    due_date=due,
                    **instructions_of(settings),
                    **order.caused(),
                ),
            )

    async def _authorize(self, order: OrderAccepted, payment: dict, ctx: MessageContext) -> None:
        if await ctx.already_processed():
            return
        amount = order.charges.total
        key = idempotency_key(order.event_id, "authorize")
        async with ctx.intent() as conn:
            cancelled = await store.is_cancelled(conn, order.order_id)
            settings = await store.payment_settings(conn, order.shop_id)
            if not cancelled and not self._gateways.configured(settings["card_gateway"]):
                # Nothing is recorded: once staff point the shop at a configured gateway, a replay authorizes there.
                raise PermanentError(
                    f"shop {order.shop_id} takes card payments on the {settings['card_gateway']} gateway, "
                    "which is not configured on the payments service"
                )
            await store.create_payment(
                conn, **payment, status="cancelled" if cancelled else "authorizing", cancelled=cancelled,
                gateway=settings["card_gateway"],
            )
            row = await store.lock_payment(conn, order.order_id)
            earlier = await store.call_keys(conn, order.order_id, "authorize")
            if not cancelled and (not earlier or earlier == [key]):
                await store.record_intent(
                    conn, key=key, order_id=order.order_id, operation="authorize", amount=amount,
                    note=f"on the {row['gateway']} gateway",
                )
        if cancelled or (earlier and earlier != [key]):
            async with ctx.unit_of_work():
                return  # cancelled before it was authorized, or the same order accepted again under a new event id
        gateway = self._gateways.of(row)
        result = await gateway.authorize(
            idempotency_key=key,
            order_id=str(order.order_id),
            amount=amount,
            currency=order.currency,
            card_token=order.payment.card_token or "",
        )
        captured: GatewayResult | None = None
        capture_key = idempotency_key(order.event_id, "capture")
        if result.approved and settings["capture_at_authorization"]:
            async with ctx.intent() as conn:
                await store.record_result(conn, key=key, approved=True, reference=result.reference, reason=None)
                await store.set_authorized(conn, order.order_id, result.reference, amount)
                await store.record_intent(
                    conn, key=capture_key, order_id=order.order_id, operation="capture", amount=amount,
                    note="capture at authorization (shop setting)",
                )
            captured = await gateway.capture(
                idempotency_key=capture_key, authorization_id=result.reference, amount=amount
            )
        async with ctx.unit_of_work() as uow:
            await store.record_result(uow.conn, key=key, approved=result.approved, reference=result.reference, reason=result.reason)
            if not result.approved:
                await store.set_status(uow.conn, order.order_id, "authorization_failed")
                uow.publish(
                    topics.PAYMENTS_EVENTS,
                    PaymentAuthorizationFailed(
                        order_id=order.order_id, shop_id=order.shop_id, reason=result.reason, **order.caused()
                    ),
                )
                return
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
            if captured is not None:
                await self.record_capture(uow, order.order_id, order.shop_id, order.currency, capture_key, amount, captured, order)

    async def on_shipment_shipped(self, shipped: ShipmentShipped, ctx: MessageContext) -> None:
        """Captures once the whole order has shipped (unless captured already): a card's amount at stake, or for
        deferred payment the shipment report (carrier and tracking number) to the provider, which is its capture;
        an order with nothing to pay is settled for 0 without any gateway."""
        if not shipped.all_shipped or await ctx.already_processed():
            return
        key = idempotency_key(shipped.event_id, "capture")
        async with ctx.intent() as conn:
            payment = await store.lock_payment(conn, shipped.order_id)
            if payment is not None and self._captures(payment):
                await store.record_intent(
                    conn, key=key, order_id=shipped.order_id, operation="capture", amount=self._capture_amount(payment),
                    note=f"shipment report {shipped.carrier} {shipped.tracking_number}" if payment["method"] == "deferred" else None,
                )
                await store.set_status(conn, shipped.order_id, "capturing")
            elif payment is None or payment["status"] != "capturing":
                payment = None
        if payment is None:
            async with ctx.unit_of_work() as uow:
                await settlements.settle_nothing_to_pay(uow, shipped)
            return
        amount = self._capture_amount(payment)
        if payment["method"] == "deferred":
            result = await self._deferred.report_shipment(
                key=key, check_id=payment["credit_check_id"], carrier=shipped.carrier, tracking_number=shipped.tracking_number
            )
        else:
            result = await self._gateways.of(payment).capture(
                idempotency_key=key, authorization_id=payment["authorization_id"], amount=amount
            )
        async with ctx.unit_of_work() as uow:
            await self.record_capture(uow, shipped.order_id, shipped.shop_id, payment["currency"], key, amount, result, shipped)

    @staticmethod
    def _captures(payment: asyncpg.Record) -> bool:
        cancelled = payment["cancelled_at"] is not None
        return captures_on_shipment(payment["status"], cancelled) or reports_shipment(
            payment["method"], payment["status"], cancelled, all_shipped=True
        )

    @staticmethod
    def _capture_amount(payment: asyncpg.Record) -> int:
        if payment["method"] == "deferred":
            return payment["amount"]
        return capture_amount(payment["amount"], payment["authorized_amount"] or 0)

    @staticmethod
    async def record_capture(
        uow: UnitOfWork, order_id: UUID, shop_id: str, currency: str, key: str, amount: int, result: GatewayResult, cause: Message
    ) -> None:
        await store.record_result(uow.conn, key=key, approved=result.approved, reference=result.reference, reason=result.reason)
        if result.approved:
            await store.set_captured(uow.conn, order_id, amount, result.reference)
            uow.publish(
                topics.PAYMENTS_EVENTS,
                PaymentCaptured(
                    order_id=order_id, shop_id=shop_id, capture_id=result.reference, amount=amount, currency=currency,
                    **cause.caused(),
                ),
            )
        else:
            await store.set_status(uow.conn, order_id, "capture_failed")
            uow.publish(
                topics.PAYMENTS_EVENTS,
                PaymentCaptureFailed(order_id=order_id, shop_id=shop_id, reason=result.reason, **cause.caused()),
            )

    async def on_cash_collected(self, delivered: ShipmentDelivered, ctx: MessageContext) -> None:
        """Settles a cash-on-delivery order when the carrier reports delivery with the cash it collected."""
        async with ctx.unit_of_work() as uow:
            if not delivered.cash_collected:
                return
            payment = await store.lock_payment(uow.conn, delivered.order_id)
            if payment is None:
                raise DependencyMissing(
                    delivered.order_id, f"cash collected for order {delivered.order_id} before its OrderAccepted reached payments"
                )
            if payment["method"] != PaymentMethod.CASH_ON_DELIVERY.value:
                return
            total = await store.record_received(
                uow.conn, source_id=f"cod:{delivered.shipment_id}", order_id=delivered.order_id,
                source="cash_on_delivery", amount=delivered.cash_collected,
            )
            if total is not None:
                publish_received(uow, payment, total, delivered.cash_collected, delivered, source="cash_on_delivery")

    async def on_provider_payment(self, report: ProviderPaymentReported, ctx: MessageContext) -> None:
        """Applies a verified provider callback once: money for a prepaid reference arrived."""
        async with ctx.unit_of_work() as uow:
            payment = await store.lock_payment(uow.conn, report.order_id)
            if payment is None or payment["reference"] != report.reference:
                raise PermanentError(f"reference {report.reference} does not belong to order {report.order_id}")
            total = await store.record_received(
                uow.conn, source_id=f"callback:{report.provider_event_id}", order_id=report.order_id,
                source="provider_callback", amount=report.amount, reference=report.reference,
            )
            if total is not None:
                publish_received(
                    uow, payment, total, report.amount, report, source="provider_callback", reference=report.reference
                )


    async def on_order_cancelled(self, cancelled: OrderCancelled, ctx: MessageContext) -> None:
        """Marks the order's payment cancelled (never captured or charged afterwards) and, if staff chose to cancel
        the payment, voids the authorization, refunds the capture or withdraws the prepaid request:
        PaymentCancelled, or PaymentCancellationFailed when it cannot be done."""
        if await ctx.already_processed():
            return
        async with ctx.intent() as conn:
            payment = await store.lock_payment(conn, cancelled.order_id)
            plan = plan_cancellation(facts_of(payment), cancelled.cancel_payment)
            await store.record_cancellation(
                conn, order_id=cancelled.order_id, shop_id=cancelled.shop_id, cancel_payment=cancelled.cancel_payment,
                reason=cancelled.reason, cancelled_by=cancelled.cancelled_by,
            )
            key = idempotency_key(cancelled.event_id, plan.action.value)
            if plan.action in (Action.VOID, Action.REFUND, Action.CANCEL_CREDIT):
                await store.record_intent(
                    conn, key=key, order_id=cancelled.order_id, operation=plan.action.value, amount=plan.amount,
                    note=f"order cancelled by {cancelled.cancelled_by}: {cancelled.reason}",
                )
        if plan.action is Action.VOID:
            result = await self._gateways.of(payment).void(idempotency_key=key, authorization_id=payment["authorization_id"])
        elif plan.action is Action.REFUND:
            result = await self._gateways.of(payment).refund(idempotency_key=key, capture_id=payment["capture_id"], amount=plan.amount)
        elif plan.action is Action.CANCEL_CREDIT:
            result = await self._deferred.cancel(key=key, check_id=payment["credit_check_id"])
        else:
            result = None
        async with ctx.unit_of_work() as uow:
            if result is not None:
                await store.record_result(uow.conn, key=key, approved=result.approved, reference=result.reference, reason=result.reason)
                cancelled_at_provider = plan.action is Action.CANCEL_CREDIT
                plan = after_gateway(plan, result.approved, result.reason)
                if result.approved and plan.outcome == "refunded":
                    await store.add_refunded(uow.conn, cancelled.order_id, plan.amount)
                if result.approved and cancelled_at_provider:
                    await store_credit.set_check_status(uow.conn, payment["credit_check_id"], "cancelled")
            await self._settle_cancellation(uow, cancelled, payment, plan)

    @staticmethod
    async def _settle_cancellation(
        uow: UnitOfWork, cancelled: OrderCancelled, payment: asyncpg.Record | None, plan: CancelPlan
    ) -> None:
        if plan.action is Action.SILENT:
            await store.settle_cancellation(
                uow.conn, cancelled.order_id, outcome="not_asked", amount=None, refund_owed=0, failure_reason=None, status=None
            )
            return
        if plan.action is Action.FAIL:
            await store.settle_cancellation(
                uow.conn, cancelled.order_id, outcome="failed", amount=None, refund_owed=0, failure_reason=plan.reason, status=None
            )
            uow.publish(
                topics.PAYMENTS_EVENTS,
                PaymentCancellationFailed(
                    order_id=cancelled.order_id, shop_id=cancelled.shop_id, reason=plan.reason, **cancelled.caused()
                ),
            )
            return
        await store.settle_cancellation(
            uow.conn, cancelled.order_id, outcome=plan.outcome, amount=plan.amount, refund_owed=plan.refund_owed,
            failure_reason=None, status=plan.status,
        )
        uow.publish(
            topics.PAYMENTS_EVENTS,
            PaymentCancelled(
                order_id=cancelled.order_id,
                shop_id=cancelled.shop_id,
                outcome=plan.outcome,
                amount=plan.amount,
                refund_owed=plan.refund_owed,
                currency=payment["currency"] if payment is not None else None,
                **cancelled.caused(),
            ),
        )
