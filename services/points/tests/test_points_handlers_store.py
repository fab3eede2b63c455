"""The points handlers and store on a real PostgreSQL: the ledger ends right whatever the order and number of deliveries,
and one customer's balance is spent once even by concurrent orders."""

import asyncio
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import pytest
from ordermesh_contracts import (
    BulkConfirmPoints,
    DeductPoints,
    ExpirePoints,
    GrantPoints,
    OrderAccepted,
    OrderCompleted,
    PaymentCaptured,
    SetPointsSettings,
    topics,
)
from ordermesh_points import commands, handlers, store
from ordermesh_points.domain.ledger import balance_of
from ordermesh_servicekit.commands import CommandRefused
from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext

GOLDEN = Path(__file__).parents[3] / "contracts" / "tests" / "golden"
SHOP = "kyoto-tea"


def ctx(pool, message) -> MessageContext:
    return MessageContext(pool, message.event_id, topics.POINTS_EVENTS, log=None)


async def deliver(pool, message, handler) -> None:
    try:
        await handler(message, ctx(pool, message))
    except DuplicateMessage:
        pass


def accepted(customer_id: str = "C-1", *, points_used: int = 0, member: bool = True) -> OrderAccepted:
    raw = json.loads((GOLDEN / "OrderAccepted.json").read_text(encoding="utf-8"))
    raw.update(event_id=str(uuid4()), order_id=str(uuid4()), shop_id=SHOP)
    raw["customer"].update(customer_id=customer_id, member_since="2024-04-01" if member else None)
    raw["charges"]["points_used"] = points_used
    return OrderAccepted.model_validate(raw)


def captured(order: OrderAccepted) -> PaymentCaptured:
    return PaymentCaptured(order_id=order.order_id, shop_id=SHOP, capture_id="cap_1", amount=1, currency="JPY")


def earned(order: OrderAccepted) -> int:
    return order.merchandise_total // 100


async def ledger_of(pool, customer_id="C-1"):
    async with pool.acquire() as conn:
        return await store.entries_of(conn, SHOP, customer_id), await store.balance(conn, SHOP, customer_id)


async def grant(pool, points, customer_id="C-1"):
    command = GrantPoints(shop_id=SHOP, issued_by="staff", customer_id=customer_id, points=points, reason="goodwill")
    await commands.grant_points(command, ctx(pool, command))


async def test_an_order_accrues_and_a_capture_confirms_with_the_sql_balance_equal_to_the_ledger(pool) -> None:
    order = accepted()
    await deliver(pool, order, handlers.on_order_accepted)
    await deliver(pool, captured(order), handlers.on_payment_captured)
    entries, balance = await ledger_of(pool)
    assert [(e.kind.value, e.points) for e in entries] == [("accrued", earned(order)), ("confirmed", earned(order))]
    assert balance == balance_of(entries)
    assert balance.available == balance.lifetime == earned(order)


async def test_a_capture_before_the_accrual_and_duplicates_of_both_end_with_one_accrual_and_one_confirmation(pool) -> None:
    order, capture = accepted(), None
    capture = captured(order)
    for message, handler in [
        (capture, handlers.on_payment_captured),
        (capture, handlers.on_payment_captured),
        (order, handlers.on_order_accepted),
        (order, handlers.on_order_accepted),
        (captured(order), handlers.on_payment_captured),
    ]:
        await deliver(pool, message, handler)
    entries, balance = await ledger_of(pool)
    assert [(e.kind.value, e.points) for e in entries] == [("accrued", earned(order)), ("confirmed", earned(order))]
    assert balance.available == earned(order) and balance.provisional == 0


async def test_a_guest_order_books_nothing_and_is_confirmed_with_zero_at_once(pool) -> None:
    order = accepted("GUEST-1", member=False)
    await deliver(pool, order, handlers.on_order_accepted)
    entries, _ = await ledger_of(pool, "GUEST-1")
    assert entries == []
    async with pool.acquire() as conn:
        row = await store.order_row(conn, order.order_id)
        kinds = await conn.fetch("SELECT payload FROM outbox ORDER BY id")
    assert row["status"] == "confirmed" and row["points"] == 0
    types = [json.loads(bytes(r["payload"]))["type"] for r in kinds]
    assert types == ["PointsAccrued", "PointsConfirmed"]


async def test_cancel_before_the_capture_reverses_and_the_late_capture_confirms_nothing(pool) -> None:
    order = accepted()
    await deliver(pool, order, handlers.on_order_accepted)
    async with pool.acquire() as conn, conn.transaction():
        from ordermesh_servicekit.consuming import UnitOfWork

        await handlers.cancel_order(UnitOfWork(conn), order, order.order_id, SHOP)
    await deliver(pool, captured(order), handlers.on_payment_captured)
    entries, balance = await ledger_of(pool)
    assert [(e.kind.value, e.points) for e in entries] == [("accrued", earned(order)), ("reversed", earned(order))]
    assert balance == balance_of(entries) and balance.provisional == balance.available == 0


async def test_concurrent_orders_of_one_customer_use_only_the_points_that_exist(pool) -> None:
    await deliver(pool, accepted(), handlers.on_order_accepted)  # makes C-1 known
    await grant(pool, 350)
    orders = [accepted(points_used=100) for _ in range(8)]
    await asyncio.gather(*(deliver(pool, order, handlers.on_order_accepted) for order in orders))
    entries, balance = await ledger_of(pool)
    assert balance.reserved == 300 and balance.available == 50
    async with pool.acquire() as conn:
        outcomes = [json.loads(bytes(r["payload"]))["type"] for r in await conn.fetch("SELECT payload FROM outbox")]
    assert outcomes.count("PointsRedeemed") == 3 and outcomes.count("PointsRedemptionFailed") == 5


async def test_points_used_are_spent_for_good_when_the_order_completes(pool) -> None:
    await deliver(pool, accepted(), handlers.on_order_accepted)
    await grant(pool, 500)
    order = accepted(points_used=200)
    await deliver(pool, order, handlers.on_order_accepted)
    done = OrderCompleted(order_id=order.order_id, shop_id=SHOP, external_order_no="X")
    await deliver(pool, done, handlers.on_order_completed)
    await deliver(pool, done, handlers.on_order_completed)
    _, balance = await ledger_of(pool)
    assert (balance.available, balance.reserved, balance.used) == (300, 0, 200)


async def test_a_grant_with_a_bad_amount_an_unknown_customer_and_no_reason_is_refused_with_every_reason_and_books_nothing(pool) -> None:
    command = GrantPoints(shop_id=SHOP, issued_by="staff", customer_id="NOBODY", points=0, reason=None)
    with pytest.raises(CommandRefused) as refused:
        await commands.grant_points(command, ctx(pool, command))
    assert refused.value.reasons == [
        "points must be a positive number, not 0",
        "unknown customer: no orders or points of this customer in this shop",
        "a reason is required",
    ]
    entries, _ = await ledger_of(pool, "NOBODY")
    assert entries == []


async def test_a_deduction_over_the_balance_is_refused_unless_the_shop_allows_negative_balances(pool) -> None:
    await deliver(pool, accepted(), handlers.on_order_accepted)
    await grant(pool, 100)
    command = DeductPoints(shop_id=SHOP, issued_by="staff", customer_id="C-1", points=150, reason="mistake")
    with pytest.raises(CommandRefused):
        await commands.deduct_points(command, ctx(pool, command))
    allow = SetPointsSettings(shop_id=SHOP, issued_by="staff", allow_negative=True)
    await commands.set_points_settings(allow, ctx(pool, allow))
    again = DeductPoints(shop_id=SHOP, issued_by="staff", customer_id="C-1", points=150, reason="mistake")
    await commands.deduct_points(again, ctx(pool, again))
    _, balance = await ledger_of(pool)
    assert balance.available == -50


async def test_bulk_confirm_confirms_paid_orders_and_skips_unpaid_cancelled_confirmed_and_unknown_ones_with_the_reason(pool) -> None:
    manual = SetPointsSettings(shop_id=SHOP, issued_by="staff", confirm_on="manual")
    await commands.set_points_settings(manual, ctx(pool, manual))
    paid, unpaid, cancelled, confirmed = accepted(), accepted(), accepted(), accepted()
    for order in (paid, unpaid, cancelled, confirmed):
        await deliver(pool, order, handlers.on_order_accepted)
    for order in (paid, cancelled, confirmed):
        await deliver(pool, captured(order), handlers.on_payment_captured)
    async with pool.acquire() as conn, conn.transaction():
        from ordermesh_servicekit.consuming import UnitOfWork

        await handlers.cancel_order(UnitOfWork(conn), cancelled, cancelled.order_id, SHOP)
    first = BulkConfirmPoints(shop_id=SHOP, issued_by="staff", order_ids=[confirmed.order_id])
    await commands.bulk_confirm_points(first, ctx(pool, first))
    unknown = uuid4()
    bulk = BulkConfirmPoints(
        shop_id=SHOP, issued_by="staff", order_ids=[paid.order_id, unpaid.order_id, cancelled.order_id, confirmed.order_id, unknown]
    )
    await commands.bulk_confirm_points(bulk, ctx(pool, bulk))
    async with pool.acquire() as conn:
        replies = [json.loads(bytes(r["payload"])) for r in await conn.fetch("SELECT payload FROM outbox WHERE topic = $1", topics.OPS_REPLIES)]
    reply = next(r for r in replies if r["command_id"] == str(bulk.event_id))
    results = {r["item"]: (r["ok"], r["reason"]) for r in reply["results"]}
    assert results == {
        str(paid.order_id): (True, None),
        str(unpaid.order_id): (False, "not paid"),
        str(cancelled.order_id): (False, "order cancelled"),
        str(confirmed.order_id): (False, "already confirmed"),
        str(unknown): (False, "no points record for this order in this shop"),
    }
    entries, balance = await ledger_of(pool)
    assert balance == balance_of(entries)
    assert balance.available == earned(paid) + earned(confirmed)


async def test_bulk_confirm_by_paid_period_finds_the_orders_paid_in_it(pool) -> None:
    manual = SetPointsSettings(shop_id=SHOP, issued_by="staff", confirm_on="manual")
    await commands.set_points_settings(manual, ctx(pool, manual))
    order = accepted()
    await deliver(pool, order, handlers.on_order_accepted)
    await deliver(pool, captured(order), handlers.on_payment_captured)
    now = datetime.now(timezone.utc)
    bulk = BulkConfirmPoints(shop_id=SHOP, issued_by="staff", paid_from=now - timedelta(hours=1), paid_until=now + timedelta(hours=1))
    await commands.bulk_confirm_points(bulk, ctx(pool, bulk))
    _, balance = await ledger_of(pool)
    assert balance.available == earned(order)


async def test_expiry_expires_old_confirmed_points_once_per_day_and_never_twice(pool) -> None:
    await deliver(pool, accepted(), handlers.on_order_accepted)
    yearly = SetPointsSettings(shop_id=SHOP, issued_by="staff", expiry_months=12)
    await commands.set_points_settings(yearly, ctx(pool, yearly))
    old = GrantPoints(
        shop_id=SHOP, issued_by="staff", customer_id="C-1", points=120, reason="welcome",
        occurred_at=datetime(2023, 1, 10, tzinfo=timezone.utc),
    )
    await commands.grant_points(old, ctx(pool, old))
    await grant(pool, 30)
    for _ in range(2):
        run = ExpirePoints(shop_id=SHOP, issued_by="scheduler", as_of=date.today())
        await commands.expire_points(run, ctx(pool, run))
    entries, balance = await ledger_of(pool)
    assert [(e.kind.value, e.points) for e in entries if e.kind.value == "expired"] == [("expired", 120)]
    assert balance.available == 30
