"""One function per event the payments service consumes: intent → gateway → result, each call idempotent."""

from typing import Any

import asyncpg

from ordermesh_contracts import (
    Message,
    OrderAccepted,
    OrderCancelled,
    PaymentCancellationFailed,
    PaymentCancelled,
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
from .adapters.gateway import Gateways
from .domain.cancellation import (
    Action,
    CancelPlan,
    PaymentFacts,
    after_gateway,
    amount_due,
    plan_cancellation,
)
from .domain.payment import Flow, flow_for, idempotency_key, instructions_of
from .domain.received import balance_after, due_date, payment_reference
from .handlers_card import CardPayments
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


def goes_alone(message: Message) -> bool:
    """Whether handling this message may reach past its unit of work (a gateway call and its intent, the inbox), so
    that it goes alone, never in a batch's transaction. Only these touch nothing but the database: the acceptance of
    an order paid without a gateway or provider (on its platform, cash on delivery, prepaid, nothing to pay), cash
    collected on delivery, and a provider's payment report. A delivery without cash needs no transaction at all, so it
    goes alone too: in a batch it would cost one."""
    if isinstance(message, OrderAccepted):
        return flow_for(message) in (Flow.CARD, Flow.DEFERRED)
    if isinstance(message, ShipmentDelivered):
        return not message.cash_collected
    return not isinstance(message, ProviderPaymentReported)


class PaymentHandlers:
    """Handlers bound to the card gateways and the deferred-payment handling they call."""

    def __init__(self, gateways: Gateways, deferred: DeferredPayments) -> None:
        self._gateways = gateways
        self._deferred = deferred
        self._card = CardPayments(gateways, deferred)

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
            await self._card.authorize(order, payment, ctx)
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

    async def on_shipment_shipped(self, shipped: ShipmentShipped, ctx: MessageContext) -> None:
        """Captures once the whole order has shipped (unless captured already): a card's amount at stake, or for
        deferred payment the shipment report (carrier and tracking number) to the provider, which is its capture;
        an order with nothing to pay is settled for 0 without any gateway."""
        if shipped.all_shipped:
            await self._card.capture_shipped(shipped, ctx)

    async def on_cash_collected(self, delivered: ShipmentDelivered, ctx: MessageContext) -> None:
        """Settles a cash-on-delivery order when the carrier reports delivery with the cash it collected."""
        if not delivered.cash_collected:
            return
        async with ctx.unit_of_work() as uow:
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
            await store.bar_opening(conn, cancelled.order_id)
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
