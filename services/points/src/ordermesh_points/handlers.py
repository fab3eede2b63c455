"""One function per message the points service consumes: load the order and its customer (locked), let the ledger
domain decide, save the order and its entries with one statement, announce."""

from dataclasses import asdict, dataclass, replace
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

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
from .domain import booking, edits, ledger
from .domain.booking import Booking
from .domain.accrual import EarningLine, EarningTerms
from .domain.confirmation import Payment
from .domain.ledger import Balance

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


@dataclass
class Preloaded:
    """What `lock_batch` read for a batch: its orders' rows and its customers' accounts that exist, locked."""

    orders: dict[UUID, store.StoredOrder]
    customers: dict[tuple[str, str], Balance]


async def lock_batch(conn: asyncpg.Connection, messages: list[Message]) -> Preloaded:
    """The preload of the points service's batched subscriptions: every order row of the batch's messages, then every
    account of the customers they name or their orders know, each set locked and read in one statement (in order).

    A preloaded order is the row as stored only until a message of the batch saves it, and a preloaded account only
    until a message books an entry for that customer (a trigger moves the balances). So each is taken at most once:
    an order by the first message of that order in the batch (`load`, `_on_payment_confirmed`, `on_order_completed`),
    an account by the first booking started for that customer (`start_booking`); later messages lock and read again,
    as they do one at a time. That is enough because every entry a handler books for a customer is booked on a
    balance `start_booking` gave it, and a handler writes no order row but its message's own (`keep_pending_edit`
    writes it after it is taken). Nothing is created here: an order or account not there yet is created by the
    handler that needs it, as one at a time."""
    orders = await store.lock_orders(conn, list({message.order_id for message in messages}))
    customers = {(order.shop_id, order.customer_id) for order in orders.values() if order.customer_id is not None}
    customers |= {(message.shop_id, named) for message in messages if (named := _customer_named_by(message)) is not None}
    return Preloaded(orders, await store.lock_customers(conn, sorted(customers)) if customers else {})


def _customer_named_by(message: Message) -> str | None:
    customer = getattr(message, "customer", None)
    return customer.customer_id if customer is not None else getattr(message, "customer_id", None)


def _preloaded_order(preloaded: Preloaded | None, order_id: UUID) -> store.StoredOrder | None:
    """The batch's preloaded row of the order, taken (a later message of the order reads it again), if there is one."""
    return preloaded.orders.pop(order_id, None) if preloaded is not None else None


async def load(
    uow: UnitOfWork, order_id, shop_id: str, customer_id: str | None, *, message_names_the_customer: bool = False,
    preloaded: Preloaded | None = None,
) -> tuple[store.StoredOrder, Booking]:
    """Locks the order (created if new) and its customer, and starts a booking on the customer's balance as it is now
    (read after the lock). The order's customer is the one it knows, else `customer_id`; an acceptance's
    (`message_names_the_customer`) wins over what the order knew. `preloaded`: the batch's, if in one."""
    order = _preloaded_order(preloaded, order_id) or await store.lock_order(uow.conn, order_id, shop_id)
    known = (customer_id or order.customer_id) if message_names_the_customer else (order.customer_id or customer_id)
    order = replace(order, customer_id=known)
    return order, await start_booking(uow, order, preloaded)


async def start_booking(uow: UnitOfWork, order: store.StoredOrder, preloaded: Preloaded | None = None) -> Booking:
    """Locks the order's customer (if it has one) and starts a booking on the balance read after the lock (the batch's
    preloaded balance, taken, if there is one)."""
    if order.customer_id is None:
        return booking.start(order.state, None)
    key = (order.shop_id, order.customer_id)
    balance = preloaded.customers.pop(key, None) if preloaded is not None else None
    if balance is None:
        balance = await store.lock_customer(uow.conn, *key)
    return booking.start(order.state, balance)


async def save(uow: UnitOfWork, order: store.StoredOrder, booked: Booking) -> None:
    """Keeps what the message decided: the order's row and its ledger entries in one statement, its notices published."""
    await store.save_order(uow.conn, replace(order, state=booked.order), booked.entries)
    for notice in booked.notices:
        event = _notice_event(notice.item, booked.order, order.shop_id, order.customer_id, notice.cause)
        uow.publish(topics.POINTS_EVENTS, event)


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
    async with ctx.unit_of_work() as uow:
        stored, booked = await load(
            uow, order.order_id, order.shop_id, order.customer.customer_id, message_names_the_customer=True,
            preloaded=ctx.preloaded,
        )
        terms = EarningTerms.at_acceptance(
            order.occurred_at.astimezone(SHOP_TIMEZONE).date(), order.customer.member_since, stored.settings
        )
        method = stored.payment_method or order.payment.method.value
        waiting = [Payment.of_token(token) for token in stored.payments_waiting]
        stored = replace(stored, payment_method=method, payments_waiting=(), terms=stored.terms or terms)
        state = ledger.confirm_on_accrual(booked.order) if stored.settings.confirms_any(waiting, method) else booked.order
        points = terms.points_for(earning_lines(order.deliveries))
        edit = OrderEdited.model_validate_json(stored.pending_edit) if stored.pending_edit else None
        accrued = edits.accrue_before_edit(state, points, edit.occurred_at) if edit else ledger.accrue(state, points)
        booked = booking.book(booked, accrued, order)
        booked = booking.book(booked, ledger.reserve(booked.order, order.charges.points_used, booked.balance), order)
        if edit:
            stored = replace(stored, payment_method=edit.payment.method.value)
            booked = _honour_edit(booked, stored, edit)
        booked = booking.book(booked, ledger.confirm_waiting(booked.order), order)
        await save(uow, stored, booked)
        if edit:
            await store.keep_pending_edit(uow.conn, edit.order_id, edit.edit_no, edit.model_dump_json())


async def on_order_edited(edit: OrderEdited, ctx: MessageContext) -> None:
    """Staff edited the order: provisional points follow the new merchandise, the points held the new points used."""
    async with ctx.unit_of_work() as uow:
        stored, booked = await load(uow, edit.order_id, edit.shop_id, edit.customer.customer_id, preloaded=ctx.preloaded)
        stored = replace(stored, payment_method=edit.payment.method.value)
        booked = _honour_edit(booked, stored, edit)
        await save(uow, stored, booked)
        await store.keep_pending_edit(uow.conn, edit.order_id, edit.edit_no, edit.model_dump_json())


def _honour_edit(booked: Booking, stored: store.StoredOrder, edit: OrderEdited) -> Booking:
    """Recomputes the order's points by the terms it was accepted under (an edit before the acceptance waits for it)
    and books the differences caused by the edit, answered with PointsRecomputed."""
    terms = stored.terms or EarningTerms.at_acceptance(
        edit.occurred_at.astimezone(SHOP_TIMEZONE).date(), edit.customer.member_since, stored.settings
    )
    decision = edits.honour_edit(
        booked.order,
        edit_no=edit.edit_no,
        points=terms.points_for(earning_lines(edit.deliveries)),
        points_used=edit.charges.points_used,
        balance=booked.balance,
    )
    return booking.book(booked, decision, edit)


async def on_order_returned(returned: OrderReturned, ctx: MessageContext) -> None:
    """Goods came back: the order earns points on what it kept — provisional points recomputed, confirmed ones of
    what came back deducted (with the shop's debt rule) — answered with PointsRecomputed."""
    async with ctx.unit_of_work() as uow:
        stored, booked = await load(
            uow, returned.order_id, returned.shop_id, returned.customer.customer_id, preloaded=ctx.preloaded
        )
        terms = stored.terms or EarningTerms.at_acceptance(
            returned.occurred_at.astimezone(SHOP_TIMEZONE).date(), returned.customer.member_since, stored.settings
        )
        decision = edits.honour_return(
            booked.order,
            edit_no=returned.edit_no,
            points=terms.points_for(earning_lines(returned.deliveries)),
            balance=booked.balance,
            allow_negative=stored.settings.allow_negative,
        )
        await save(uow, stored, booking.book(booked, decision, returned))


async def _on_payment_confirmed(event: PaymentCaptured | PaymentReceived, payment: Payment, ctx: MessageContext) -> None:
    async with ctx.unit_of_work() as uow:
        stored = _preloaded_order(ctx.preloaded, event.order_id) or await store.lock_order(uow.conn, event.order_id, event.shop_id)
        state = replace(stored.state, paid=True, paid_at=stored.state.paid_at or event.occurred_at)
        stored = replace(stored, state=state)
        confirms = stored.settings.confirms(payment, stored.payment_method)
        if confirms is None and payment.token() not in stored.payments_waiting:
            stored = replace(stored, payments_waiting=(*stored.payments_waiting, payment.token()))
        booked = booking.start(state, None)
        if confirms:
            booked = booking.book(await start_booking(uow, stored, ctx.preloaded), ledger.confirm(state), event)
        await save(uow, stored, booked)


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
        stored = _preloaded_order(ctx.preloaded, completed.order_id)
        if stored is None or stored.shop_id != completed.shop_id:
            stored = await store.lock_existing_order(uow.conn, completed.order_id, completed.shop_id)
        if stored is None or stored.customer_id is None:
            return
        booked = await start_booking(uow, stored, ctx.preloaded)
        await save(uow, stored, booking.book(booked, ledger.commit(stored.state), completed))


async def on_order_cancelled(cancelled: OrderCancelled, ctx: MessageContext) -> None:
    """Staff cancelled the order: its points are undone and answered with PointsReversed, whatever the
    choices about stock, payment and mail."""
    async with ctx.unit_of_work() as uow:
        await cancel_order(
            uow, cancelled, cancelled.order_id, cancelled.shop_id, customer_id=cancelled.customer_id, preloaded=ctx.preloaded
        )


async def cancel_order(
    uow: UnitOfWork, cancelled: Message, order_id, shop_id: str, *, customer_id: str | None = None,
    preloaded: Preloaded | None = None,
) -> None:
    """Reverses provisional points, deducts confirmed ones (debt where the balance can't carry them), releases
    points used. `customer_id` names the ledger when the order's acceptance never reached points."""
    stored, booked = await load(uow, order_id, shop_id, customer_id, preloaded=preloaded)
    decision = ledger.cancel(booked.order, booked.balance, allow_negative=stored.settings.allow_negative)
    await save(uow, stored, booking.book(booked, decision, cancelled))
