"""One function per message the points service consumes: lock, ask the ledger domain, book, announce."""

from zoneinfo import ZoneInfo

from ordermesh_contracts import (
    Message,
    OrderAccepted,
    OrderCancelled,
    OrderCompleted,
    PaymentCaptured,
    PaymentReceived,
    PointsAccrued,
    PointsConfirmed,
    PointsRedeemed,
    PointsRedemptionFailed,
    PointsReversed,
    topics,
)
from ordermesh_servicekit.consuming import MessageContext, UnitOfWork

from . import store
from .domain import ledger
from .domain.accrual import EarningLine, order_points

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


async def on_order_accepted(order: OrderAccepted, ctx: MessageContext) -> None:
    """Books provisional points (confirmed at once when 0 or when payment came first) and holds the points used."""
    customer_id = order.customer.customer_id
    ordered_on = order.occurred_at.astimezone(SHOP_TIMEZONE).date()
    lines = [
        EarningLine(line.sku, line.unit_price * line.quantity - line.line_discount)
        for delivery in order.deliveries
        for line in delivery.lines
    ]
    async with ctx.unit_of_work() as uow:
        settings = await store.shop_settings(uow.conn, order.shop_id)
        points = order_points(lines, ordered_on=ordered_on, member_since=order.customer.member_since, settings=settings)
        state, _ = await store.lock_order(uow.conn, order.order_id, order.shop_id)
        await store.lock_customer(uow.conn, order.shop_id, customer_id)
        accrued = ledger.accrue(state, points)
        await book(uow, accrued, order.shop_id, customer_id, order)
        balance = await store.balance(uow.conn, order.shop_id, customer_id)
        await book(uow, ledger.reserve(accrued.order, order.charges.points_used, balance), order.shop_id, customer_id, order)


async def _on_payment_confirmed(event: PaymentCaptured | PaymentReceived, kind: str, ctx: MessageContext) -> None:
    async with ctx.unit_of_work() as uow:
        state, customer_id = await store.lock_order(uow.conn, event.order_id, event.shop_id)
        await store.mark_paid(uow.conn, event.order_id, event.occurred_at)
        settings = await store.shop_settings(uow.conn, event.shop_id)
        if not settings.confirms_on(kind):  # type: ignore[arg-type]
            return
        if customer_id is not None:
            await store.lock_customer(uow.conn, event.shop_id, customer_id)
        await book(uow, ledger.confirm(state), event.shop_id, customer_id, event)


async def on_payment_captured(captured: PaymentCaptured, ctx: MessageContext) -> None:
    """Payment captured (card, deferred): confirms the order's points if the shop confirms on capture."""
    await _on_payment_confirmed(captured, "captured", ctx)


async def on_payment_received(received: PaymentReceived, ctx: MessageContext) -> None:
    """Money received (prepaid, cash on delivery): once nothing is due, confirms points if the shop confirms on receipt."""
    if received.balance > 0:
        return
    await _on_payment_confirmed(received, "received", ctx)


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
