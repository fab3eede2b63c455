"""One function per message the points service consumes: load the order and its customer (locked), let the ledger
domain decide, save the order and its entries with one statement, announce."""

from dataclasses import asdict, replace
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
from ordermesh_servicekit.unit_of_work import ClaimingPreload, InboxClaim, write_batch

from . import store
from .batch_points import BatchPoints
from .domain import booking, edits, ledger
from .domain.booking import Booking
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


async def lock_batch(conn: asyncpg.Connection, messages: list[Message], claim: InboxClaim) -> BatchPoints:
    """The preload of the points service's batched subscriptions: the batch's inbox rows written (`claim`, see
    `InboxClaim`), then every order of the messages it claimed, then every account of the customers they name or
    their orders know, locked and read, in one statement (see `BatchPoints`).

    What a handler would create one at a time is created here: the order of every message but a completion (which
    books only for an order the service knows) and the account of the customer an acceptance names (it books for that
    customer whatever the order knew). Nothing else is: an order or account not there yet is created by the handler
    that needs it, as one at a time. A message the inbox held, or repeated in the batch, is given too (what is claimed
    is known only once the statement ran) but locks and creates nothing: no handler runs for it."""
    about = [
        store.BatchMessage(
            message.event_id, message.order_id, message.shop_id, _creates_order(message), _customer_named_by(message),
            isinstance(message, OrderAccepted),
        )
        for message in messages
    ]
    return BatchPoints(*await store.lock_orders_and_customers(conn, about, claim))



BATCH_POINTS = {"preload": ClaimingPreload(lock_batch), "finish": write_batch}
"""How the points service's batched subscriptions read and write their batches' orders and balances
(`Subscription(..., **BATCH_POINTS)`)."""


def _creates_order(message: Message) -> bool:
    return not isinstance(message, OrderCompleted) and not (isinstance(message, PaymentReceived) and message.balance > 0)


def _customer_named_by(message: Message) -> str | None:
    customer = getattr(message, "customer", None)
    return customer.customer_id if customer is not None else getattr(message, "customer_id", None)


async def _take_order(uow: UnitOfWork, batch: BatchPoints | None, order_id: UUID) -> store.StoredOrder | None:
    """The batch's order, taken, if the message is handled in a batch that holds it."""
    return await batch.take_order(uow.conn, order_id) if batch is not None else None


async def load(
    uow: UnitOfWork, order_id, shop_id: str, customer_id: str | None, *, message_names_the_customer: bool = False,
    preloaded: BatchPoints | None = None,
) -> tuple[store.StoredOrder, Booking]:
    """Locks the order (created if new) and its customer, and starts a booking on the customer's balance as it is now
    (read after the lock). The order's customer is the one it knows, else `customer_id`; an acceptance's
    (`message_names_the_customer`) wins over what the order knew. `preloaded`: the batch's, if in one."""
    order = await _take_order(uow, preloaded, order_id) or await store.lock_order(uow.conn, order_id, shop_id)
    known = (customer_id or order.customer_id) if message_names_the_customer else (order.customer_id or customer_id)
    order = replace(order, customer_id=known)
    return order, await start_booking(uow, order, preloaded)


async def start_booking(uow: UnitOfWork, order: store.StoredOrder, preloaded: BatchPoints | None = None) -> Booking:
    """Locks the order's customer (if it has one) and starts a booking on the balance read after the lock (the batch's
    balance, taken, if it holds it)."""
    if order.customer_id is None:
        return booking.start(order.state, None)
    balance = await preloaded.take_balance(uow.conn, order.shop_id, order.customer_id) if preloaded is not None else None
    if balance is None:
        balance = await store.lock_customer(uow.conn, order.shop_id, order.customer_id)
    return booking.start(order.state, balance)


async def save(uow: UnitOfWork, order: store.StoredOrder, booked: Booking, preloaded: BatchPoints | None = None) -> None:
    """Keeps what the message decided: the order's row and its ledger entries in one statement (in a batch, with the
    batch's saves at its end), its notices published. The order keeps its pending edit while it waits for one."""
    saved = replace(order, state=booked.order, pending_edit=order.pending_edit if booked.order.pending_edit_no else None)
    if preloaded is None:
        await store.save_order(uow.conn, saved, booked.entries)
    else:
        preloaded.save(saved, booked)
    for notice in booked.notices:
        event = _notice_event(notice.item, booked.order, order.shop_id, order.customer_id, notice.cause)
        uow.publish(topics.POINTS_EVENTS, event)


def _keeping(stored: store.StoredOrder, booked: Booking, edit: OrderEdited) -> store.StoredOrder:
    """The order keeping `edit` if it is the one the order now waits for."""
    return replace(stored, pending_edit=edit.model_dump_json()) if booked.order.pending_edit_no == edit.edit_no else stored


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
        await save(uow, _keeping(stored, booked, edit) if edit else stored, booked, ctx.preloaded)


async def on_order_edited(edit: OrderEdited, ctx: MessageContext) -> None:
    """Staff edited the order: provisional points follow the new merchandise, the points held the new points used."""
    async with ctx.unit_of_work() as uow:
        stored, booked = await load(uow, edit.order_id, edit.shop_id, edit.customer.customer_id, preloaded=ctx.preloaded)
        stored = replace(stored, payment_method=edit.payment.method.value)
        booked = _honour_edit(booked, stored, edit)
        await save(uow, _keeping(stored, booked, edit), booked, ctx.preloaded)


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
        await save(uow, stored, booking.book(booked, decision, returned), ctx.preloaded)


async def _on_payment_confirmed(event: PaymentCaptured | PaymentReceived, payment: Payment, ctx: MessageContext) -> None:
    async with ctx.unit_of_work() as uow:
        stored = await _take_order(uow, ctx.preloaded, event.order_id) or await store.lock_order(uow.conn, event.order_id, event.shop_id)
        state = replace(stored.state, paid=True, paid_at=stored.state.paid_at or event.occurred_at)
        stored = replace(stored, state=state)
        confirms = stored.settings.confirms(payment, stored.payment_method)
        if confirms is None and payment.token() not in stored.payments_waiting:
            stored = replace(stored, payments_waiting=(*stored.payments_waiting, payment.token()))
        booked = booking.start(state, None)
        if confirms:
            booked = booking.book(await start_booking(uow, stored, ctx.preloaded), ledger.confirm(state), event)
        await save(uow, stored, booked, ctx.preloaded)


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
        stored = await _take_order(uow, ctx.preloaded, completed.order_id)
        if stored is None:
            stored = await store.lock_existing_order(uow.conn, completed.order_id, completed.shop_id)
        if stored is None or stored.shop_id != completed.shop_id or stored.customer_id is None:
            if stored is not None and ctx.preloaded is not None:
                ctx.preloaded.give_back(stored)
            return
        booked = await start_booking(uow, stored, ctx.preloaded)
        await save(uow, stored, booking.book(booked, ledger.commit(stored.state), completed), ctx.preloaded)


async def on_order_cancelled(cancelled: OrderCancelled, ctx: MessageContext) -> None:
    """Staff cancelled the order: its points are undone and answered with PointsReversed, whatever the
    choices about stock, payment and mail."""
    async with ctx.unit_of_work() as uow:
        await cancel_order(
            uow, cancelled, cancelled.order_id, cancelled.shop_id, customer_id=cancelled.customer_id, preloaded=ctx.preloaded
        )


async def cancel_order(
    uow: UnitOfWork, cancelled: Message, order_id, shop_id: str, *, customer_id: str | None = None,
    preloaded: BatchPoints | None = None,
) -> None:
    """Reverses provisional points, deducts confirmed ones (debt where the balance can't carry them), releases
    points used. `customer_id` names the ledger when the order's acceptance never reached points."""
    stored, booked = await load(uow, order_id, shop_id, customer_id, preloaded=preloaded)
    decision = ledger.cancel(booked.order, booked.balance, allow_negative=stored.settings.allow_negative)
    await save(uow, stored, booking.book(booked, decision, cancelled), preloaded)
