"""One function per message the points service consumes: lock, ask the ledger domain, book, announce."""

from dataclasses import asdict
from zoneinfo import ZoneInfo

from ordermesh_contracts import (
    Message,
    OrderAccepted,
    OrderCancelled,
    OrderCompleted,
    OrderEdited,
    OrderReturned,
    PaymentCaptured,
    PaymentReceived,
    PointsAccrued,
    PointsConfirmed,
    PointsRecomputed,
    PointsRedeemed,
    PointsRedemptionFailed,
    PointsReversed,
    topics,
)
from ordermesh_contracts.orders import DeliveryGroup
from ordermesh_servicekit.consuming import MessageContext, UnitOfWork

from . import store
from .domain import edits, ledger
from .domain.accrual import EarningLine, EarningTerms
from .domain.confirmation import Payment

SHOP_TIMEZONE = ZoneInfo("Asia/Tokyo")


def _notice_event(notice: ledger.Notice, order: ledger.OrderPoints, shop_id: str, customer_id: str, cause: Message) -> Message:
    about = {"order_id": order.order_id, "shop_id": shop_id, "customer_id": customer_id, **cause.caused()}
    match notice:
        case ledger.Accrued(points):
            return PointsAccrued(points=points, **about)
        case ledger.Confirmed(points):
            return PointsConfirmed(points=points, **about)
        case ledger.Redeemed(points):
            return PointsRedeemed(points=points, **about)
        case ledger.RedemptionFailed(requested, available):
            reason = f"{requested} points asked for, {available} available"
            return PointsRedemptionFailed(requested=requested, available=available, reason=reason, **about)
        case ledger.Reversed(reversed_, deducted, debt, released):
            return PointsReversed(reversed=reversed_, deducted=deducted, debt=debt, released=released, **about)
        case ledger.Recomputed():
            return PointsRecomputed(**asdict(notice), **about)
    raise AssertionError(f"unknown notice {notice!r}")


async def book(
    uow: UnitOfWork, decision: ledger.Decision, shop_id: str, customer_id: str | None, cause: Message, *, cause_id=None
) -> None:
    """Keeps a decision: the order's state, its entries (and debt paid from points that became available), its events.

    The customer's account must be locked by the caller when the decision moves points.
    """
    await store.save_order(uow.conn, decision.order, customer_id)
    if customer_id is None:
        return
    entries = decision.entries
    if entries:
        after = (await store.balance(uow.conn, shop_id, customer_id)).after_all(entries)
        settled = tuple(ledger.Entry(e.kind, e.points, decision.order.order_id) for e in ledger.settle_debt(after))
        await store.append_entries(
            uow.conn, shop_id, customer_id, entries + settled, cause_id=cause_id or cause.event_id, at=cause.occurred_at
        )
    for notice in decision.notices:
        uow.publish(topics.POINTS_EVENTS, _notice_event(notice, decision.order, shop_id, customer_id, cause))


def earning_lines(deliveries: list[DeliveryGroup]) -> list[EarningLine]:
    """The order's lines as the points rules see them: each line's amount after its discount."""
    return [
        EarningLine(line.sku, line.unit_price * line.quantity - line.line_discount)
        for delivery in deliveries
        for line in delivery.lines
    ]


async def on_order_accepted(order: OrderAccepted, ctx: MessageContext) -> None:
    """Books provisional points (confirmed at once when 0 or when a payment that confirms came first) and holds the
    points used; an edit that came first is honoured right after, as if it had come in order."""
    customer_id = order.customer.customer_id
    ordered_on = order.occurred_at.astimezone(SHOP_TIMEZONE).date()
    async with ctx.unit_of_work() as uow:
        settings = await store.shop_settings(uow.conn, order.shop_id)
        terms = EarningTerms.at_acceptance(ordered_on, order.customer.member_since, settings)
        points = terms.points_for(earning_lines(order.deliveries))
        state, _ = await store.lock_order(uow.conn, order.order_id, order.shop_id)
        await store.lock_customer(uow.conn, order.shop_id, customer_id)
        await store.keep_payment_method(uow.conn, order.order_id, order.payment.method.value)
        method = await store.payment_method(uow.conn, order.order_id)
        payments = [Payment.of_token(token) for token in await store.take_waiting_payments(uow.conn, order.order_id)]
        if settings.confirms_any(payments, method):
            state = ledger.confirm_on_accrual(state)
        waiting = await store.pending_edit(uow.conn, order.order_id)
        edit = OrderEdited.model_validate_json(waiting) if waiting else None
        accrued = edits.accrue_before_edit(state, points, edit.occurred_at) if edit else ledger.accrue(state, points)
        await store.keep_terms(uow.conn, order.order_id, terms)
        await book(uow, accrued, order.shop_id, customer_id, order)
        balance = await store.balance(uow.conn, order.shop_id, customer_id)
        await book(uow, ledger.reserve(accrued.order, order.charges.points_used, balance), order.shop_id, customer_id, order)
        if edit:
            await honour_edit(uow, edit)
        state, _ = await store.lock_order(uow.conn, order.order_id, order.shop_id)
        await book(uow, ledger.confirm_waiting(state), order.shop_id, customer_id, order)


async def on_order_edited(edit: OrderEdited, ctx: MessageContext) -> None:
    """Staff edited the order: provisional points follow the new merchandise, the points held the new points used."""
    async with ctx.unit_of_work() as uow:
        await honour_edit(uow, edit)


async def honour_edit(uow: UnitOfWork, edit: OrderEdited) -> None:
    """Recomputes the order's points by the terms it was accepted under (an edit before the acceptance waits for it),
    books the differences caused by the edit and answers with PointsRecomputed."""
    customer_id = edit.customer.customer_id
    state, known_customer = await store.lock_order(uow.conn, edit.order_id, edit.shop_id)
    customer_id = known_customer or customer_id
    await store.lock_customer(uow.conn, edit.shop_id, customer_id)
    await store.keep_payment_method(uow.conn, edit.order_id, edit.payment.method.value, edited=True)
    terms = await store.earning_terms(uow.conn, edit.order_id) or EarningTerms.at_acceptance(
        edit.occurred_at.astimezone(SHOP_TIMEZONE).date(),
        edit.customer.member_since,
        await store.shop_settings(uow.conn, edit.shop_id),
    )
    balance = await store.balance(uow.conn, edit.shop_id, customer_id)
    decision = edits.honour_edit(
        state,
        edit_no=edit.edit_no,
        points=terms.points_for(earning_lines(edit.deliveries)),
        points_used=edit.charges.points_used,
        balance=balance,
    )
    await book(uow, decision, edit.shop_id, customer_id, edit)
    await store.keep_pending_edit(uow.conn, edit.order_id, edit.edit_no, edit.model_dump_json())


async def on_order_returned(returned: OrderReturned, ctx: MessageContext) -> None:
    """Goods came back: the order earns points on what it kept — provisional points recomputed, confirmed ones of
    what came back deducted (with the shop's debt rule) — answered with PointsRecomputed."""
    async with ctx.unit_of_work() as uow:
        state, known_customer = await store.lock_order(uow.conn, returned.order_id, returned.shop_id)
        customer_id = known_customer or returned.customer.customer_id
        await store.lock_customer(uow.conn, returned.shop_id, customer_id)
        settings = await store.shop_settings(uow.conn, returned.shop_id)
        terms = await store.earning_terms(uow.conn, returned.order_id) or EarningTerms.at_acceptance(
            returned.occurred_at.astimezone(SHOP_TIMEZONE).date(), returned.customer.member_since, settings,
        )
        decision = edits.honour_return(
            state,
            edit_no=returned.edit_no,
            points=terms.points_for(earning_lines(returned.deliveries)),
            balance=await store.balance(uow.conn, returned.shop_id, customer_id),
            allow_negative=settings.allow_negative,
        )
        await book(uow, decision, returned.shop_id, customer_id, returned)


async def _on_payment_confirmed(event: PaymentCaptured | PaymentReceived, payment: Payment, ctx: MessageContext) -> None:
    async with ctx.unit_of_work() as uow:
        state, customer_id = await store.lock_order(uow.conn, event.order_id, event.shop_id)
        await store.mark_paid(uow.conn, event.order_id, event.occurred_at)
        settings = await store.shop_settings(uow.conn, event.shop_id)
        confirms = settings.confirms(payment, await store.payment_method(uow.conn, event.order_id))
        if confirms is None:
            await store.keep_waiting_payment(uow.conn, event.order_id, payment.token())
        if not confirms:
            return
        if customer_id is not None:
            await store.lock_customer(uow.conn, event.shop_id, customer_id)
        await book(uow, ledger.confirm(state), event.shop_id, customer_id, event)


async def on_payment_captured(captured: PaymentCaptured, ctx: MessageContext) -> None:
    """Payment captured (card, deferred, platform; 0 for an order with nothing to pay): confirms the order's points
    if the shop confirms on this capture; one that came before the acceptance may wait for the order's method."""
    await _on_payment_confirmed(captured, Payment("captured", nothing_due=captured.amount == 0), ctx)


async def on_payment_received(received: PaymentReceived, ctx: MessageContext) -> None:
    """Money received (prepaid, cash on delivery): once nothing is due, confirms points if the shop confirms on it."""
    if received.balance > 0:
        return
    await _on_payment_confirmed(received, Payment("received", received.method.value), ctx)


async def on_order_completed(completed: OrderCompleted, ctx: MessageContext) -> None:
    """The order is done: the points it used are spent for good."""
    async with ctx.unit_of_work() as uow:
        found = await store.lock_existing_order(uow.conn, completed.order_id, completed.shop_id)
        if found is None or found[1] is None:
            return
        state, customer_id = found
        await store.lock_customer(uow.conn, completed.shop_id, customer_id)
        await book(uow, ledger.commit(state), completed.shop_id, customer_id, completed)


async def on_order_cancelled(cancelled: OrderCancelled, ctx: MessageContext) -> None:
    """Staff cancelled the order: its points are undone and answered with PointsReversed, whatever the
    choices about stock, payment and mail."""
    async with ctx.unit_of_work() as uow:
        await cancel_order(uow, cancelled, cancelled.order_id, cancelled.shop_id, customer_id=cancelled.customer_id)


async def cancel_order(uow: UnitOfWork, cancelled: Message, order_id, shop_id: str, *, customer_id: str | None = None) -> None:
    """Reverses provisional points, deducts confirmed ones (debt where the balance can't carry them), releases
    points used. `customer_id` names the ledger when the order's acceptance never reached points."""
    state, known_customer = await store.lock_order(uow.conn, order_id, shop_id)
    customer_id = known_customer or customer_id
    settings = await store.shop_settings(uow.conn, shop_id)
    if customer_id is not None:
        await store.lock_customer(uow.conn, shop_id, customer_id)
        current = await store.balance(uow.conn, shop_id, customer_id)
    else:
        current = ledger.Balance()
    await book(uow, ledger.cancel(state, current, allow_negative=settings.allow_negative), shop_id, customer_id, cancelled)
