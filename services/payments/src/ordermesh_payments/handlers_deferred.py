"""Deferred payment (post-pay): the credit check at acceptance, polling a pending one, the shipment report that is
the capture, and cancelling at the provider. Each provider call is an intent first, its answer a later transaction."""

from uuid import UUID

import asyncpg

from ordermesh_contracts import (
    CreditCheckApproved,
    CreditCheckPending,
    CreditCheckRejected,
    Message,
    OrderAccepted,
    topics,
)
from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext, TransientError, UnitOfWork
from ordermesh_servicekit.outbox import write_outbox
from ordermesh_servicekit.tracing import job_span

from . import store, store_credit
from .adapters.credit import CreditProvider
from .domain.credit import PAYMENT_STATUS, CreditAnswer, CreditCheckStep, CreditStatus, applies, plan_credit_check
from .domain.payment import idempotency_key


def credit_event(order_id: UUID, shop_id: str, answer: CreditAnswer, amount: int, currency: str, cause: dict) -> Message:
    """The event that tells orders what the provider answered about a credit check."""
    if answer.status is CreditStatus.APPROVED:
        return CreditCheckApproved(
            order_id=order_id, shop_id=shop_id, check_id=answer.check_id, amount=amount, currency=currency, **cause
        )
    if answer.status is CreditStatus.PENDING:
        return CreditCheckPending(
            order_id=order_id, shop_id=shop_id, check_id=answer.check_id, amount=amount, currency=currency, **cause
        )
    return CreditCheckRejected(
        order_id=order_id, shop_id=shop_id, check_id=answer.check_id, reason=answer.reason or "rejected", **cause
    )


async def record_answer(
    uow: UnitOfWork, *, key: str, order_id: UUID, shop_id: str, amount: int, currency: str, answer: CreditAnswer,
    cause: Message, current: bool,
) -> None:
    """Records the provider's answer to a credit check and publishes it; `current`: the check becomes the payment's
    (a rejected re-check for an edit is recorded but leaves the earlier check and amount standing)."""
    approved = answer.status is not CreditStatus.REJECTED
    await store.record_result(uow.conn, key=key, approved=approved, reference=answer.check_id, reason=answer.reason)
    if answer.check_id is not None:
        await store_credit.record_check(
            uow.conn, check_id=answer.check_id, order_id=order_id, shop_id=shop_id, amount=amount, currency=currency,
            status=answer.status.value, reason=answer.reason, cause_id=cause.event_id, correlation_id=cause.correlation_id,
        )
    if current:
        await store_credit.set_current_check(uow.conn, order_id, answer.check_id, PAYMENT_STATUS[answer.status], amount)
    uow.publish(topics.PAYMENTS_EVENTS, credit_event(order_id, shop_id, answer, amount, currency, cause.caused()))


class DeferredPayments:
    """Deferred-payment handling bound to the provider it calls."""

    def __init__(self, provider: CreditProvider) -> None:
        self._provider = provider

    async def start(self, order: OrderAccepted, payment: dict, ctx: MessageContext) -> None:
        """Asks the provider for a credit check of the order's total: CreditCheckApproved, -Pending or -Rejected."""
        key = idempotency_key(order.event_id, "credit_check")
        basis = await store_credit.credit_check_facts(ctx.pool, ctx.message_id, order.order_id)
        step = plan_credit_check(basis.facts, key)
        if step is CreditCheckStep.REQUEST and not await store.save_opening_intent(
            ctx.pool, payment, existed=basis.facts.payment_exists, version=basis.version, status="credit_checking",
            operation="credit_check", key=key, amount=payment["amount"],
        ):
            raise TransientError(f"order {order.order_id}'s payment changed while it was decided; decided again")
        if step is CreditCheckStep.DUPLICATE:
            raise DuplicateMessage(str(ctx.message_id))
        if step is not CreditCheckStep.REQUEST:
            async with ctx.unit_of_work() as uow:
                if step is CreditCheckStep.CANCELLED:
                    await store.create_payment(uow.conn, **payment, status="cancelled", cancelled=True)
            return
        answer = await self._provider.request_check(
            idempotency_key=key, order_id=str(order.order_id), customer_id=order.customer.customer_id,
            amount=payment["amount"], currency=order.currency,
        )
        async with ctx.unit_of_work() as uow:
            await record_answer(
                uow, key=key, order_id=order.order_id, shop_id=order.shop_id, amount=payment["amount"],
                currency=order.currency, answer=answer, cause=order, current=True,
            )

    async def poll_pending(self, pool: asyncpg.Pool) -> int:
        """Asks the provider about every pending credit check once; publishes each new decision. Returns how many."""
        decided = 0
        for row in await store_credit.pending_checks(pool):
            with job_span("poll credit check", row["traceparent"], {"ordermesh.order_id": str(row["order_id"])}):
                decided += await self._poll_one(pool, row["check_id"])
        return decided

    async def _poll_one(self, pool: asyncpg.Pool, check_id: str) -> int:
        """Asks the provider about one pending credit check; publishes its decision if it is new. Returns 1 if so."""
        answer = await self._provider.check_status(check_id)
        async with pool.acquire() as conn, conn.transaction():
            check = await store_credit.lock_check(conn, check_id)
            if check is None or not applies(check["status"], answer):
                await store_credit.mark_polled(conn, check_id)
                return 0
            await store_credit.decide_check(conn, check["check_id"], answer.status.value, answer.reason)
            payment = await store.lock_payment(conn, check["order_id"])
            if payment is None or payment["cancelled_at"] is not None or payment["credit_check_id"] != check["check_id"]:
                return 0
            await store.set_status(conn, check["order_id"], PAYMENT_STATUS[answer.status])
            uow = UnitOfWork(conn)
            cause = {"correlation_id": check["correlation_id"], "causation_id": check["cause_id"]}
            uow.publish(
                topics.PAYMENTS_EVENTS,
                credit_event(
                    check["order_id"], check["shop_id"], CreditAnswer(answer.status, check["check_id"], answer.reason),
                    check["amount"], check["currency"], cause,
                ),
            )
            await write_outbox(conn, uow.outgoing)
            return 1

    async def report_shipment(self, *, key: str, check_id: str, carrier: str, tracking_number: str):
        """Reports the shipment to the provider (the capture of a deferred payment)."""
        return await self._provider.report_shipment(
            idempotency_key=key, check_id=check_id, carrier=carrier, tracking_number=tracking_number
        )

    async def cancel(self, *, key: str, check_id: str):
        """Cancels the deferred-payment transaction at the provider."""
        return await self._provider.cancel(idempotency_key=key, check_id=check_id)
