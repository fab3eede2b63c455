"""Order edits and returns in the payments service: bring the payment to the edited total (OrderEdited, OrderReturned),
or try again after a failure (RetryAmountChange). One answer per edit: PaymentAmountChanged or PaymentAmountChangeFailed."""

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from ordermesh_contracts import (
    ItemResult,
    Message,
    OrderEdited,
    OrderReturned,
    PaymentAmountChanged,
    PaymentAmountChangeFailed,
    PaymentMethod,
    PaymentRequested,
    RetryAmountChange,
    topics,
)
from ordermesh_servicekit.commands import CommandRefused, accept
from ordermesh_servicekit.consuming import MessageContext, UnitOfWork

from . import store, store_card, store_credit, store_edits
from .adapters.credit import CreditProvider
from .adapters.gateway import GatewayResult, Gateways
from .domain.credit import CreditAnswer, CreditStatus
from .domain.edits import EditAction, EditFacts, EditPlan, after_gateway, plan_edit
from .domain.payment import idempotency_key, instructions_of
from .handlers_deferred import record_answer

SERVICE = "payments"
CREDIT_STATUS = {"credit_pending": "pending", "credit_approved": "approved", "credit_rejected": "rejected"}
OPERATIONS = {
    EditAction.REAUTHORIZE: "reauthorize",
    EditAction.REFUND: "refund",
    EditAction.CREDIT_RECHECK: "credit_check",
    EditAction.CREDIT_UPDATE: "credit_update",
}
"""The ledger operation (and idempotency-key name) of each gateway action of an edit."""


def edit_facts(payment: asyncpg.Record | None) -> EditFacts | None:
    """The money facts an edit is decided on."""
    if payment is None:
        return None
    return EditFacts(
        method=payment["method"], status=payment["status"], amount=payment["amount"],
        authorized=payment["authorized_amount"] or 0, authorization_id=payment["authorization_id"],
        captured=payment["captured_amount"], refunded=payment["refunded_amount"], received=payment["received_amount"],
        cancelled=payment["cancelled_at"] is not None, edit_no=payment["edit_no"],
        credit_status=CREDIT_STATUS.get(payment["status"]),
    )


@dataclass(frozen=True)
class Change:
    """One attempt to bring an order's payment to a total: caused by an edit or by a staff retry."""

    cause: Message
    order_id: UUID
    shop_id: str
    edit_no: int
    total: int
    currency: str
    card_token: str | None
    customer_id: str | None
    retry: bool = False


class AmountChanges:
    """Amount changes bound to the card gateways and the deferred-payment provider they call."""

    def __init__(self, gateways: Gateways, credit: CreditProvider) -> None:
        self._gateways = gateways
        self._credit = credit

    async def on_order_edited(self, edited: OrderEdited, ctx: MessageContext) -> None:
        """Brings the payment to the edited total (see `plan_edit`); an edit of a cancelled order changes nothing."""
        change = Change(
            edited, edited.order_id, edited.shop_id, edited.edit_no, edited.charges.total, edited.currency,
            edited.payment.card_token, edited.customer.customer_id,
        )
        await self._run(change, ctx)

    async def on_order_returned(self, returned: OrderReturned, ctx: MessageContext) -> None:
        """Goods came back: the payment follows the lowered total like an edit's (numbered in the same sequence) — a
        card refund of the part, or a refund owed where the money came in outside a gateway."""
        change = Change(
            returned, returned.order_id, returned.shop_id, returned.edit_no, returned.charges.total, returned.currency,
            returned.payment.card_token, returned.customer.customer_id,
        )
        await self._run(change, ctx)

    async def retry(self, command: RetryAmountChange, ctx: MessageContext) -> None:
        """Tries again to bring the payment to the latest edited total after PaymentAmountChangeFailed."""
        if await ctx.already_processed():
            return
        async with ctx.intent() as conn:
            payment = await store.lock_payment(conn, command.order_id)
            if payment is None or payment["shop_id"] != command.shop_id:
                raise CommandRefused(f"no payment for order {command.order_id} in shop {command.shop_id}")
            if payment["amount_change_failure"] is None or payment["edited_total"] is None:
                raise CommandRefused(f"order {command.order_id} has no failed amount change to retry")
        change = Change(
            command, command.order_id, command.shop_id, payment["edit_no"], payment["edited_total"], payment["currency"],
            payment["card_token"], payment["customer_id"], retry=True,
        )
        await self._run(change, ctx, command=command)

    async def _run(self, change: Change, ctx: MessageContext, command: RetryAmountChange | None = None) -> None:
        if await ctx.already_processed():
            return
        cause_id = change.cause.event_id
        async with ctx.intent() as conn:
            payment = await store.lock_payment(conn, change.order_id)
            plan = await store_edits.saved_plan(conn, cause_id)
            if plan is None:
                plan = plan_edit(edit_facts(payment), change.edit_no, change.total, retry=change.retry)
                if plan.action is EditAction.IGNORE and command is not None:
                    raise CommandRefused(plan.reason or "nothing to retry")
                if plan.action is EditAction.FAIL and command is not None and payment is not None:
                    raise CommandRefused(plan.reason or "the amount cannot be changed now")
                if plan.action is not EditAction.IGNORE:
                    if payment is not None:
                        await store_edits.note_edit(
                            conn, change.order_id, edit_no=change.edit_no, edited_total=change.total,
                            card_token=change.card_token, customer_id=change.customer_id,
                        )
                    await store_edits.save_plan(conn, cause_id=cause_id, order_id=change.order_id, edit_no=change.edit_no, plan=plan)
                    await self._record_intent(conn, change, plan, payment)
        if plan.action is EditAction.IGNORE:
            if ctx.log is not None:
                ctx.log.info("edit changes nothing about the payment", reason=plan.reason)
            async with ctx.unit_of_work():
                return
        answer, settled = await self._call_gateway(change, plan, payment, ctx)
        async with ctx.unit_of_work() as uow:
            await self._settle(uow, change, plan, payment, answer, settled)
            if command is not None:
                ok = settled.action is not EditAction.FAIL
                accept(
                    uow, command, SERVICE, results=[ItemResult(item=str(change.order_id), ok=ok, reason=settled.reason)],
                    details={"outcome": settled.outcome if ok else None, "amount": change.total},
                )

    async def _record_intent(self, conn: asyncpg.Connection, change: Change, plan: EditPlan, payment: asyncpg.Record) -> None:
        if plan.action not in OPERATIONS:
            return
        operation = OPERATIONS[plan.action]
        amount = plan.refunded if plan.action is EditAction.REFUND else plan.amount
        await store.record_intent(
            conn, key=idempotency_key(change.cause.event_id, operation), order_id=change.order_id, operation=operation,
            amount=amount, note=f"edit {change.edit_no}" + (" (staff retry)" if change.retry else ""),
        )

    async def _call_gateway(
        self, change: Change, plan: EditPlan, payment: asyncpg.Record, ctx: MessageContext
    ) -> tuple[CreditAnswer | GatewayResult | None, EditPlan]:
        """Makes the plan's gateway call(s); returns the answer and the plan as it then stands."""
        cause_id = change.cause.event_id
        if plan.action is EditAction.REAUTHORIZE:
            key = idempotency_key(cause_id, OPERATIONS[EditAction.REAUTHORIZE])
            result = await self._gateways.of(payment).authorize(
                idempotency_key=key, order_id=str(change.order_id), amount=plan.amount, currency=payment["currency"],
                card_token=change.card_token or payment["card_token"] or "",
            )
            if result.approved and plan.replaces:
                void_key = idempotency_key(cause_id, "void_replaced")
                async with ctx.intent() as conn:
                    await store_card.save_authorized(
                        conn, change.order_id, key=key, authorization_id=result.reference, amount=plan.amount
                    )
                    await store.record_intent(
                        conn, key=void_key, order_id=change.order_id, operation="void", amount=payment["authorized_amount"],
                        note=f"replaced by the re-authorization for edit {change.edit_no}",
                    )
                voided = await self._gateways.of(payment).void(idempotency_key=void_key, authorization_id=plan.replaces)
                async with ctx.intent() as conn:
                    await store.record_result(conn, key=void_key, approved=voided.approved, reference=voided.reference, reason=voided.reason)
            return result, after_gateway(plan, result.approved, result.reason)
        if plan.action is EditAction.REFUND:
            result = await self._gateways.of(payment).refund(
                idempotency_key=idempotency_key(cause_id, "refund"), capture_id=payment["capture_id"], amount=plan.refunded
            )
            return result, after_gateway(plan, result.approved, result.reason)
        if plan.action is EditAction.CREDIT_UPDATE:
            result = await self._credit.update_amount(
                idempotency_key=idempotency_key(cause_id, "credit_update"), check_id=payment["credit_check_id"],
                amount=plan.amount,
            )
            return result, after_gateway(plan, result.approved, result.reason)
        if plan.action is EditAction.CREDIT_RECHECK:
            answer = await self._credit.request_check(
                idempotency_key=idempotency_key(cause_id, "credit_check"), order_id=str(change.order_id),
                customer_id=change.customer_id or payment["customer_id"] or "", amount=plan.amount,
                currency=payment["currency"],
            )
            return answer, after_gateway(plan, answer.status is not CreditStatus.REJECTED, answer.reason)
        return None, plan

    async def _settle(
        self, uow: UnitOfWork, change: Change, plan: EditPlan, payment: asyncpg.Record | None,
        answer: CreditAnswer | GatewayResult | None, settled: EditPlan,
    ) -> None:
        cause, order_id = change.cause, change.order_id
        currency = change.currency
        if isinstance(answer, GatewayResult):
            await store.record_result(
                uow.conn, key=idempotency_key(cause.event_id, OPERATIONS[plan.action]), approved=answer.approved, reference=answer.reference,
                reason=answer.reason,
            )
        if isinstance(answer, CreditAnswer):
            replaced = payment["credit_check_id"]
            await record_answer(
                uow, key=idempotency_key(cause.event_id, "credit_check"), order_id=order_id, shop_id=change.shop_id,
                amount=plan.amount, currency=currency, answer=answer, cause=cause,
                current=settled.action is not EditAction.FAIL,
            )
            if settled.action is not EditAction.FAIL and replaced and replaced != answer.check_id:
                await store_credit.set_check_status(uow.conn, replaced, "replaced")
        if settled.action is not EditAction.FAIL:
            if plan.action is EditAction.REAUTHORIZE and not plan.replaces:
                await store.set_authorized(uow.conn, order_id, answer.reference, plan.amount)
            if plan.action is EditAction.REFUND:
                await store_edits.add_refunded_for_edit(uow.conn, order_id, plan.refunded)
            if plan.action is EditAction.CREDIT_UPDATE:
                await store_credit.set_check_amount(uow.conn, payment["credit_check_id"], plan.amount)
        await store_edits.settle_change(uow.conn, cause.event_id, order_id, settled)
        if settled.action is EditAction.FAIL:
            uow.publish(
                topics.PAYMENTS_EVENTS,
                PaymentAmountChangeFailed(
                    order_id=order_id, shop_id=change.shop_id, edit_no=change.edit_no, requested_amount=change.total,
                    currency=currency, reason=settled.reason or "failed", **cause.caused(),
                ),
            )
            return
        uow.publish(
            topics.PAYMENTS_EVENTS,
            PaymentAmountChanged(
                order_id=order_id, shop_id=change.shop_id, edit_no=change.edit_no, outcome=settled.outcome,
                previous_amount=settled.previous_amount, amount=settled.amount, refunded=settled.refunded,
                balance_due=settled.balance_due, currency=currency, **cause.caused(),
            ),
        )
        if settled.request is not None:
            uow.publish(
                topics.PAYMENTS_EVENTS,
                PaymentRequested(
                    order_id=order_id, shop_id=change.shop_id, method=PaymentMethod(payment["method"]),
                    reference=payment["reference"], amount=settled.request, currency=currency,
                    due_date=payment["due_date"],
                    **instructions_of(await store.payment_settings(uow.conn, change.shop_id)), **cause.caused(),
                ),
            )
