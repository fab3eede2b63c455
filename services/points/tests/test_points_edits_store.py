"""Order edits and the scheduled expiry on a real PostgreSQL: the ledger ends the same whatever order the acceptance,
payment and edit come in, duplicates change nothing, and each shop's day of expiry runs once even when raced."""

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4
from zoneinfo import ZoneInfo

from ordermesh_contracts import (
    GrantPoints,
    OrderAccepted,
    OrderCancelled,
    OrderEdited,
    PaymentCaptured,
    SetPointsSettings,
    topics,
)
from ordermesh_points import commands, handlers, store
from ordermesh_points.domain.ledger import balance_of
from ordermesh_points.expiry import run_scheduled_expiry
from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext

GOLDEN = Path(__file__).parents[3] / "contracts" / "tests" / "golden"
SHOP = "kyoto-tea"
TOKYO = ZoneInfo("Asia/Tokyo")


async def deliver(pool, message, handler) -> None:
    try:
        await handler(message, MessageContext(pool, message.event_id, topics.ORDERS_EVENTS, log=None))
    except DuplicateMessage:
        pass


def golden(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))


def accepted(customer_id: str, *, points_used: int = 0, member_since: str | None = "2021-06-01") -> OrderAccepted:
    raw = golden("OrderAccepted")  # earns 9620 // 100 = 96
    raw.update(event_id=str(uuid4()), order_id=str(uuid4()), shop_id=SHOP)
    raw["customer"].update(customer_id=customer_id, member_since=member_since)
    raw["charges"]["points_used"] = points_used
    return OrderAccepted.model_validate(raw)


def edited(order: OrderAccepted, *, edit_no: int = 1, quantity: int = 3, points_used: int = 0, minutes: int = 60) -> OrderEdited:
    raw = golden("OrderEdited")  # 3 × MATCHA: earns 11780 // 100 = 117
    raw.update(event_id=str(uuid4()), order_id=str(order.order_id), shop_id=SHOP, edit_no=edit_no)
    raw["occurred_at"] = (order.occurred_at + timedelta(minutes=minutes)).isoformat()
    raw["customer"] = order.customer.model_dump(mode="json")
    raw["deliveries"][0]["lines"][0]["quantity"] = quantity
    raw["charges"]["points_used"] = points_used
    return OrderEdited.model_validate(raw)


def captured(order: OrderAccepted, *, minutes: int) -> PaymentCaptured:
    return PaymentCaptured(
        order_id=order.order_id, shop_id=SHOP, capture_id="cap_1", amount=1, currency="JPY",
        occurred_at=order.occurred_at + timedelta(minutes=minutes),
    )


async def ledger_of(pool, customer_id: str):
    async with pool.acquire() as conn:
        return await store.entries_of(conn, SHOP, customer_id), await store.balance(conn, SHOP, customer_id)


async def published(pool, type_: str) -> list[dict]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.POINTS_EVENTS)
    return [body for body in (json.loads(bytes(r["payload"])) for r in rows) if body["type"] == type_]


async def grant(pool, customer_id: str, points: int, at: datetime | None = None) -> None:
    command = GrantPoints(shop_id=SHOP, issued_by="staff", customer_id=customer_id, points=points, reason="welcome", **({"occurred_at": at} if at else {}))
    await commands.grant_points(command, MessageContext(pool, command.event_id, topics.POINTS_COMMANDS, log=None))


async def test_an_edit_books_the_difference_answers_with_points_recomputed_and_a_duplicate_or_resent_edit_changes_nothing(pool) -> None:
    order = accepted("C-1")
    edit = edited(order, quantity=1)  # 5500 + 2160 - 200 = 7460 → 74
    await deliver(pool, order, handlers.on_order_accepted)
    for message in (edit, edit, edit.model_copy(update={"event_id": uuid4()})):
        await deliver(pool, message, handlers.on_order_edited)
    entries, balance = await ledger_of(pool, "C-1")
    assert [(e.kind.value, e.points) for e in entries] == [("accrued", 96), ("reversed", 22)]
    assert balance == balance_of(entries) and balance.provisional == 74
    [answer] = await published(pool, "PointsRecomputed")
    assert (answer["edit_no"], answer["previous_provisional"], answer["provisional"], answer["confirmed_unchanged"]) == (1, 96, 74, False)
    assert answer["causation_id"] == str(edit.event_id)


async def test_an_edit_before_the_acceptance_ends_exactly_like_the_same_messages_in_order(pool) -> None:
    await grant_known(pool, "IN-ORDER", 500)
    await grant_known(pool, "LATE", 500)
    in_order, late = accepted("IN-ORDER", points_used=100), accepted("LATE", points_used=100)
    await deliver(pool, in_order, handlers.on_order_accepted)
    await deliver(pool, edited(in_order, points_used=300), handlers.on_order_edited)
    await deliver(pool, captured(in_order, minutes=120), handlers.on_payment_captured)
    late_edit = edited(late, points_used=300)
    for message, handler in [
        (late_edit, handlers.on_order_edited),
        (captured(late, minutes=120), handlers.on_payment_captured),
        (late, handlers.on_order_accepted),
        (late_edit, handlers.on_order_edited),
    ]:
        await deliver(pool, message, handler)
    expected = [("accrued", 96), ("reserved", 100), ("accrued", 21), ("reserved", 200), ("confirmed", 117)]
    for customer in ("IN-ORDER", "LATE"):
        entries, balance = await ledger_of(pool, customer)
        assert [(e.kind.value, e.points) for e in entries if e.order_id] == expected, customer
        assert (balance.available, balance.reserved, balance.provisional) == (500 - 300 + 117, 300, 0)
    assert [a["provisional"] for a in await published(pool, "PointsRecomputed")] == [117, 117]
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT edit_no, pending_edit_no, pending_edit FROM order_points WHERE order_id = $1", late.order_id)
    assert (row["edit_no"], row["pending_edit_no"], row["pending_edit"]) == (1, 0, None)


async def grant_known(pool, customer_id: str, points: int) -> None:
    await deliver(pool, accepted(customer_id, member_since=None), handlers.on_order_accepted)  # makes the customer known
    await grant(pool, customer_id, points)


async def test_an_edit_of_a_confirmed_order_only_changes_the_points_used_and_a_raise_beyond_the_balance_fails(pool) -> None:
    await grant_known(pool, "C-2", 150)
    order = accepted("C-2", points_used=100)
    await deliver(pool, order, handlers.on_order_accepted)
    await deliver(pool, captured(order, minutes=5), handlers.on_payment_captured)
    await deliver(pool, edited(order, quantity=1, points_used=400), handlers.on_order_edited)
    entries, balance = await ledger_of(pool, "C-2")
    assert [(e.kind.value, e.points) for e in entries if e.order_id == order.order_id] == [("accrued", 96), ("reserved", 100), ("confirmed", 96)]
    [answer] = await published(pool, "PointsRecomputed")
    assert (answer["confirmed_unchanged"], answer["previous_points_used"], answer["points_used"]) == (True, 100, 100)
    [failed] = await published(pool, "PointsRedemptionFailed")
    assert (failed["requested"], failed["available"]) == (400, 100 + 50 + 96)
    await deliver(pool, edited(order, edit_no=2, quantity=1, points_used=30), handlers.on_order_edited)
    _, after = await ledger_of(pool, "C-2")
    assert (after.available, after.reserved, after.lifetime) == (150 + 96 - 30, 30, 150 + 96)


async def test_an_edit_of_a_cancelled_order_books_nothing_and_an_edit_earns_by_the_membership_at_order_time(pool) -> None:
    order = accepted("C-3")
    await deliver(pool, order, handlers.on_order_accepted)
    cancelled = OrderCancelled(
        order_id=order.order_id, shop_id=SHOP, external_order_no="X", customer_id="C-3", reason="asked",
        restore_stock=False, cancel_payment=False, notify_customer=False, cancelled_by="staff",
    )
    await deliver(pool, cancelled, handlers.on_order_cancelled)
    await deliver(pool, edited(order), handlers.on_order_edited)
    entries, _ = await ledger_of(pool, "C-3")
    assert [(e.kind.value, e.points) for e in entries] == [("accrued", 96), ("reversed", 96)]

    member = accepted("C-4")
    await deliver(pool, member, handlers.on_order_accepted)
    left = edited(member)
    left = left.model_copy(update={"customer": left.customer.model_copy(update={"member_since": None})})
    await deliver(pool, left, handlers.on_order_edited)
    entries, balance = await ledger_of(pool, "C-4")
    assert [(e.kind.value, e.points) for e in entries] == [("accrued", 96), ("accrued", 21)] and balance.provisional == 117


async def expiring_shop(pool, shop: str, customer_id: str, old: int, recent: int) -> None:
    settings = SetPointsSettings(shop_id=shop, issued_by="staff", expiry_months=12)
    await commands.set_points_settings(settings, MessageContext(pool, settings.event_id, topics.POINTS_COMMANDS, log=None))
    async with pool.acquire() as conn:
        await store.lock_customer(conn, shop, customer_id)
    for points, at in ((old, datetime(2023, 1, 10, tzinfo=timezone.utc)), (recent, None)):
        command = GrantPoints(shop_id=shop, issued_by="staff", customer_id=customer_id, points=points, reason="welcome", **({"occurred_at": at} if at else {}))
        await commands.grant_points(command, MessageContext(pool, command.event_id, topics.POINTS_COMMANDS, log=None))


async def test_the_scheduled_expiry_expires_each_shops_old_points_once_a_day_even_when_replicas_race(pool) -> None:
    await expiring_shop(pool, SHOP, "C-9", old=120, recent=30)
    now = datetime.now(timezone.utc)
    runs = await asyncio.gather(*(run_scheduled_expiry(pool, now, TOKYO) for _ in range(4)))
    assert sorted(run.get(SHOP, -1) for run in runs) == [-1, -1, -1, 120]
    assert await run_scheduled_expiry(pool, now + timedelta(days=1), TOKYO) == {SHOP: 0}
    entries, balance = await ledger_of(pool, "C-9")
    assert [(e.kind.value, e.points) for e in entries if e.kind.value == "expired"] == [("expired", 120)]
    assert balance.available == 30
    [expired] = await published(pool, "PointsExpired")
    assert (expired["customer_id"], expired["points"], expired["as_of"]) == ("C-9", 120, now.astimezone(TOKYO).date().isoformat())
    async with pool.acquire() as conn:
        days = await conn.fetch("SELECT as_of, customers, points FROM expiry_runs WHERE shop_id = $1 ORDER BY as_of", SHOP)
    assert [(r["customers"], r["points"]) for r in days] == [(1, 120), (0, 0)]


async def test_the_scheduled_expiry_leaves_shops_without_an_expiry_alone(pool) -> None:
    order = accepted("C-10")
    await deliver(pool, order, handlers.on_order_accepted)
    await grant(pool, "C-10", 80, at=datetime(2022, 1, 1, tzinfo=timezone.utc))
    assert await run_scheduled_expiry(pool, datetime.now(timezone.utc), TOKYO) == {}
    _, balance = await ledger_of(pool, "C-10")
    assert balance.available == 80
