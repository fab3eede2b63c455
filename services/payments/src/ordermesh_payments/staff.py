"""Staff commands of the payments service: settings, void, refund, retry capture, mark paid, bank statements, checks."""

from datetime import date, datetime, timezone

import asyncpg

from ordermesh_contracts import (
    CheckAuthorizations,
    CheckOverduePayments,
    ImportBankStatement,
    ItemResult,
    MarkPaymentReceived,
    PaymentOverdue,
    PaymentReauthorizationNeeded,
    PaymentRefunded,
    PaymentVoided,
    RefundPayment,
    RetryCapture,
    SetPaymentSettings,
    VoidPayment,
    topics,
)
from ordermesh_servicekit.commands import CommandRefused, accept
from ordermesh_servicekit.consuming import MessageContext, UnitOfWork
from ordermesh_servicekit.tracing import job_span

from . import store, store_card
from .adapters.gateway import Gateways
from .domain.card import (
    CardState,
    authorization_expires_at,
    capture_refusals,
    needs_reauthorization,
    refund_amount,
    refund_refusals,
    renewal_helps,
    void_refusals,
)
from .domain.edits import capture_amount
from .domain.payment import idempotency_key, order_correlation
from .domain.received import balance_after, parse_bank_statement
from .handlers import due_of, publish_received
from .handlers_card import record_capture

SERVICE = "payments"


def card_state(payment: asyncpg.Record) -> CardState:
    """The money facts of a payment row."""
    return CardState(
        status=payment["status"],
        authorized=payment["authorized_amount"] or 0,
        captured=payment["captured_amount"],
        refunded=payment["refunded_amount"],
        cancelled=payment["cancelled_at"] is not None,
    )


async def locked_card_payment(conn: asyncpg.Connection, command: VoidPayment | RefundPayment | RetryCapture) -> asyncpg.Record:
    """The command's order's card payment, locked; refused when there is none."""
    payment = await store.lock_payment(conn, command.order_id)
    if payment is None or payment["shop_id"] != command.shop_id:
        raise CommandRefused(f"no payment for order {command.order_id} in shop {command.shop_id}")
    if payment["method"] == "platform":
        raise CommandRefused(f"order {command.order_id} was paid on its sales platform: void, refund or capture it there")
    if payment["method"] != "card" or payment["authorization_id"] is None:
        raise CommandRefused(f"order {command.order_id} has no card authorization ({payment['method']}, {payment['status']})")
    return payment


def _job_span(name: str, payment, cause):
    """The span of one order's part of a periodic check: in the order's trace when the check runs on its own, under the
    staff command's span when staff ran it (`cause`)."""
    return job_span(name, None if cause else payment["traceparent"], {"ordermesh.order_id": str(payment["order_id"])})


async def flag_expiring_authorizations(uow: UnitOfWork, shop_id: str, now: datetime, cause=None) -> list[ItemResult]:
    """Flags the shop's uncaptured authorizations that expire within a day: PaymentReauthorizationNeeded each (none
    for a shop whose expiring authorizations are renewed automatically)."""
    settings = await store.payment_settings(uow.conn, shop_id)
    if settings["reauthorize_expiring"] and renewal_helps(settings["authorization_valid_days"]):
        return []  # the periodic check renews them (and flags only those the gateway refuses to renew)
    results = []
    for payment in await store.uncaptured_authorizations(uow.conn, shop_id):
        valid_days = settings["authorization_valid_days"]
        if payment["authorized_at"] is None or not needs_reauthorization(payment["authorized_at"], now, valid_days=valid_days):
            continue
        await store.flag_reauthorization(uow.conn, payment["order_id"])
        with _job_span("flag expiring authorization", payment, cause):
            uow.publish(
                topics.PAYMENTS_EVENTS,
                PaymentReauthorizationNeeded(
                    order_id=payment["order_id"],
                    shop_id=shop_id,
                    authorization_id=payment["authorization_id"],
                    authorized_at=payment["authorized_at"],
                    expires_at=authorization_expires_at(payment["authorized_at"], valid_days),
                    **(cause.caused() if cause else order_correlation(payment)),
                ),
            )
        results.append(ItemResult(item=str(payment["order_id"]), ok=False, reason="reauthorization_needed"))
    return results


async def announce_overdue(uow: UnitOfWork, today: date, *, shop_id: str | None = None, cause=None) -> list[ItemResult]:
    """Publishes PaymentOverdue once for each prepaid payment (of the shop, or every shop) whose due date is before
    `today` with money still due, asking orders to cancel it where the shop wants that; one result per order."""
    settings: dict[str, dict] = {}
    results = []
    for payment in await store.overdue_payments(uow.conn, today, shop_id):
        owner = payment["shop_id"]
        if owner not in settings:
            settings[owner] = await store.payment_settings(uow.conn, owner)
        await store.mark_overdue_notified(uow.conn, payment["order_id"])
        cancel = settings[owner]["cancel_overdue_prepaid"]
        with _job_span("announce overdue payment", payment, cause):
            uow.publish(
                topics.PAYMENTS_EVENTS,
                PaymentOverdue(
                    order_id=payment["order_id"], shop_id=owner, reference=payment["reference"], due_date=payment["due_date"],
                    balance=balance_after(payment["amount"], payment["received_amount"]), currency=payment["currency"],
                    cancel_order=cancel, **(cause.caused() if cause else order_correlation(payment)),
                ),
            )
        reason = f"due {payment['due_date'].isoformat()}: " + ("cancelled by the shop's rule" if cancel else "flagged")
        results.append(ItemResult(item=str(payment["order_id"]), ok=True, reason=reason))
    return results


class StaffCommands:
    """Handlers of `payments.commands.v1`, bound to the gateways they call."""

    def __init__(self, gateways: Gateways) -> None:
        self._gateways = gateways

    async def set_settings(self, command: SetPaymentSettings, ctx: MessageContext) -> None:
        """Replaces the shop's payment settings; a card gateway this service has no credentials for is refused."""
        if not self._gateways.configured(command.card_gateway):
            raise CommandRefused(
                f"card gateway {command.card_gateway} is not configured on the payments service"
                + (" (ORDERMESH_STRIPE_API_KEY is not set)" if command.card_gateway == "stripe" else "")
            )
        async with ctx.unit_of_work() as uow:
            values = command.model_dump(include=set(store.SETTINGS))
            await store.save_payment_settings(uow.conn, command.shop_id, **values, updated_by=command.issued_by)
            accept(uow, command, SERVICE, details=values)

    async def void(self, command: VoidPayment, ctx: MessageContext) -> None:
        """Releases an uncaptured authorization; a captured one is refused (refund it)."""
        if await ctx.already_processed():
            return
        key = idempotency_key(command.event_id, "void")
        async with ctx.intent() as conn:
            payment = await locked_card_payment(conn, command)
            if reasons := void_refusals(card_state(payment)):
                raise CommandRefused(*reasons)
            await store.record_intent(
                conn, key=key, order_id=command.order_id, operation="void", amount=payment["authorized_amount"], note=command.reason
            )
        result = await self._gateways.of(payment).void(idempotency_key=key, authorization_id=payment["authorization_id"])
        async with ctx.unit_of_work() as uow:
            await store.record_result(uow.conn, key=key, approved=result.approved, reference=result.reference, reason=result.reason)
            if result.approved:
                await store.set_status(uow.conn, command.order_id, "voided")
                uow.publish(
                    topics.PAYMENTS_EVENTS,
                    PaymentVoided(
                        order_id=command.order_id, shop_id=command.shop_id, authorization_id=payment["authorization_id"],
                        amount=payment["authorized_amount"], currency=payment["currency"], reason=command.reason,
                        **command.caused(),
                    ),
                )
            accept(uow, command, SERVICE, results=[ItemResult(item=str(command.order_id), ok=result.approved, reason=result.reason)])

    async def refund(self, command: RefundPayment, ctx: MessageContext) -> None:
        """Refunds part or all of the capture; more than captured and not yet refunded is refused."""
        if await ctx.already_processed():
            return
        key = idempotency_key(command.event_id, "refund")
        async with ctx.intent() as conn:
            payment = await locked_card_payment(conn, command)
            state = card_state(payment)
            amount = refund_amount(state, command.amount)
            if reasons := refund_refusals(state, amount):
                raise CommandRefused(*reasons)
            await store.record_intent(conn, key=key, order_id=command.order_id, operation="refund", amount=amount, note=command.reason)
        result = await self._gateways.of(payment).refund(idempotency_key=key, capture_id=payment["capture_id"], amount=amount)
        async with ctx.unit_of_work() as uow:
            await store.record_result(uow.conn, key=key, approved=result.approved, reference=result.reference, reason=result.reason)
            if result.approved:
                refunded_total = await store.add_refunded(uow.conn, command.order_id, amount)
                uow.publish(
                    topics.PAYMENTS_EVENTS,
                    PaymentRefunded(
                        order_id=command.order_id, shop_id=command.shop_id, refund_id=result.reference, amount=amount,
                        refunded_total=refunded_total, currency=payment["currency"], reason=command.reason,
                        **command.caused(),
                    ),
                )
            accept(
                uow, command, SERVICE,
                results=[ItemResult(item=str(command.order_id), ok=result.approved, reason=result.reason)],
                details={"amount": amount},
            )

    async def retry_capture(self, command: RetryCapture, ctx: MessageContext) -> None:
        """Captures again (after a failure, or by hand); more than authorized is refused."""
        if await ctx.already_processed():
            return
        key = idempotency_key(command.event_id, "capture")
        async with ctx.intent() as conn:
            payment = await locked_card_payment(conn, command)
            amount = command.amount or capture_amount(payment["amount"], payment["authorized_amount"])
            if reasons := capture_refusals(card_state(payment), amount):
                raise CommandRefused(*reasons)
            await store_card.save_capture_intent(conn, command.order_id, key=key, amount=amount, note=command.reason)
        result = await self._gateways.of(payment).capture(idempotency_key=key, authorization_id=payment["authorization_id"], amount=amount)
        async with ctx.unit_of_work() as uow:
            await record_capture(
                uow, command.order_id, command.shop_id, payment["currency"], key, amount, result, command
            )
            accept(
                uow, command, SERVICE,
                results=[ItemResult(item=str(command.order_id), ok=result.approved, reason=result.reason)],
                details={"amount": amount},
            )

    async def mark_received(self, command: MarkPaymentReceived, ctx: MessageContext) -> None:
        """Records money staff received by hand, with their reason."""
        async with ctx.unit_of_work() as uow:
            payment = await store.lock_payment(uow.conn, command.order_id)
            if payment is None or payment["shop_id"] != command.shop_id:
                raise CommandRefused(f"no payment for order {command.order_id} in shop {command.shop_id}")
            total = await store.record_received(
                uow.conn, source_id=f"staff:{command.event_id}", order_id=command.order_id, source="staff",
                amount=command.amount, note=f"{command.issued_by}: {command.reason}",
            )
            publish_received(uow, payment, total, command.amount, command, source="staff")
            accept(uow, command, SERVICE, details={"balance": balance_after(due_of(payment), total)})

    async def import_bank_statement(self, command: ImportBankStatement, ctx: MessageContext) -> None:
        """Matches each statement line to a prepaid order by reference and records it once (by transaction id)."""
        rows, problems = parse_bank_statement(command.csv_text)
        if not rows and problems:
            raise CommandRefused(*problems)
        async with ctx.unit_of_work() as uow:
            results = [ItemResult(item=problem.split(":")[0], ok=False, reason=problem) for problem in problems]
            for row in rows:
                payment = await store.payment_by_reference(uow.conn, row.reference)
                if payment is None or payment["shop_id"] != command.shop_id:
                    results.append(ItemResult(item=row.transaction_id, ok=False, reason=f"unknown reference {row.reference}"))
                    continue
                payment = await store.lock_payment(uow.conn, payment["order_id"])
                total = await store.record_received(
                    uow.conn, source_id=f"bank:{row.transaction_id}", order_id=payment["order_id"], source="bank_statement",
                    amount=row.amount, reference=row.reference,
                )
                if total is None:
                    results.append(ItemResult(item=row.transaction_id, ok=False, reason="already imported"))
                    continue
                publish_received(uow, payment, total, row.amount, command, source="bank_statement", reference=row.reference)
                balance = balance_after(due_of(payment), total)
                note = None if balance == 0 else (f"balance due {balance}" if balance > 0 else f"over-paid by {-balance}")
                results.append(ItemResult(item=row.transaction_id, ok=True, reason=note))
            accept(uow, command, SERVICE, results=results)

    async def check_authorizations(self, command: CheckAuthorizations, ctx: MessageContext) -> None:
        """Flags the shop's authorizations that would expire before shipping."""
        async with ctx.unit_of_work() as uow:
            results = await flag_expiring_authorizations(uow, command.shop_id, datetime.now(timezone.utc), command)
            accept(uow, command, SERVICE, results=results)

    async def check_overdue(self, command: CheckOverduePayments, ctx: MessageContext) -> None:
        """Runs the shop's overdue check as of the given time (its day in the offset given), answered per order."""
        as_of = command.as_of or datetime.now(timezone.utc)
        async with ctx.unit_of_work() as uow:
            results = await announce_overdue(uow, as_of.date(), shop_id=command.shop_id, cause=command)
            accept(uow, command, SERVICE, results=results, details={"as_of": as_of.isoformat(), "overdue": len(results)})
