"""OrderCancelled through the points handler on a real PostgreSQL: provisional points reversed, points used released,
confirmed points deducted (debt where the balance can't carry them), one PointsReversed answer per cancellation."""

import json
from pathlib import Path
from uuid import uuid4

import pytest

from ordermesh_contracts import (
    GrantPoints,
    OrderAccepted,
    OrderCancelled,
    OrderCompleted,
    PaymentCaptured,
    SetPointsSettings,
    topics,
)
from ordermesh_points import commands, handlers, store
from ordermesh_points.domain.ledger import balance_of
from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext

GOLDEN = Path(__file__).parents[3] / "contracts" / "tests" / "golden"
SHOP = "kyoto-tea"


async def deliver(pool, message, handler) -> None:
    try:
        await handler(message, MessageContext(pool, message.event_id, topics.ORDERS_EVENTS, log=None))
    except DuplicateMessage:
        pass


async def staff(pool, command, handler) -> None:
    await handler(command, MessageContext(pool, command.event_id, topics.POINTS_COMMANDS, log=None))


def accepted(customer_id: str = "C-1", *, points_used: int = 0) -> OrderAccepted:
    raw = json.loads((GOLDEN / "OrderAccepted.json").read_text(encoding="utf-8"))
    raw.update(event_id=str(uuid4()), order_id=str(uuid4()), shop_id=SHOP)
    raw["customer"].update(customer_id=customer_id, member_since="2024-04-01")
    raw["charges"]["points_used"] = points_used
    return OrderAccepted.model_validate(raw)


def cancelled(order_id, customer_id: str = "C-1", **choices) -> OrderCancelled:
    flags = {"restore_stock": False, "cancel_payment": False, "notify_customer": False, **choices}
    return OrderCancelled(
        order_id=order_id, shop_id=SHOP, external_order_no="X-1", customer_id=customer_id,
        reason="customer asked", cancelled_by="staff:sato", **flags,
    )


def earned(order: OrderAccepted) -> int:
    return order.merchandise_total // 100


async def order_entries(pool, order_id) -> list[tuple[str, int]]:
    rows = await pool.fetch("SELECT kind, points FROM ledger WHERE order_id = $1 ORDER BY entry_id", order_id)
    return [(row["kind"], row["points"]) for row in rows]


async def answers(pool, order_id) -> list[tuple[bytes, dict]]:
    rows = await pool.fetch("SELECT key, payload FROM outbox WHERE topic = $1 ORDER BY id", topics.POINTS_EVENTS)
    found = [(bytes(row["key"]), json.loads(bytes(row["payload"]))) for row in rows]
    return [(key, body) for key, body in found if body["type"] == "PointsReversed" and body["order_id"] == str(order_id)]


async def balance(pool, customer_id="C-1"):
    async with pool.acquire() as conn:
        entries = await store.entries_of(conn, SHOP, customer_id)
        summed = await store.balance(conn, SHOP, customer_id)
    assert summed == balance_of(entries)
    return summed


async def test_cancelling_a_provisional_order_that_used_points_reverses_and_releases_them_and_a_late_capture_confirms_nothing(pool) -> None:
    await deliver(pool, accepted(), handlers.on_order_accepted)
    await staff(pool, GrantPoints(shop_id=SHOP, issued_by="t", customer_id="C-1", points=300, reason="welcome"), commands.grant_points)
    order = accepted(points_used=200)
    await deliver(pool, order, handlers.on_order_accepted)
    await deliver(pool, cancelled(order.order_id, restore_stock=True, cancel_payment=True, notify_customer=True), handlers.on_order_cancelled)
    await deliver(pool, PaymentCaptured(order_id=order.order_id, shop_id=SHOP, capture_id="c", amount=1, currency="JPY"), handlers.on_payment_captured)
    await deliver(pool, OrderCompleted(order_id=order.order_id, shop_id=SHOP, external_order_no="X-1"), handlers.on_order_completed)

    assert await order_entries(pool, order.order_id) == [
        ("accrued", earned(order)), ("reserved", 200), ("released", 200), ("reversed", earned(order)),
    ]
    [(key, answer)] = await answers(pool, order.order_id)
    assert key == f"{SHOP}:C-1".encode()
    assert (answer["reversed"], answer["released"], answer["deducted"], answer["debt"]) == (earned(order), 200, 0, 0)
    customer = await balance(pool)
    assert (customer.available, customer.reserved, customer.used) == (300, 0, 0)
    [row] = await pool.fetch("SELECT status, reservation, reserved FROM order_points WHERE order_id = $1", order.order_id)
    assert (row["status"], row["reservation"], row["reserved"]) == ("reversed", "released", 0)


async def test_points_are_undone_the_same_way_whatever_the_three_choices_are(pool) -> None:
    outcomes = []
    for choices in ({}, {"restore_stock": True}, {"cancel_payment": True}, {"notify_customer": True}):
        order = accepted()
        await deliver(pool, order, handlers.on_order_accepted)
        await deliver(pool, cancelled(order.order_id, **choices), handlers.on_order_cancelled)
        [(_, answer)] = await answers(pool, order.order_id)
        outcomes.append((await order_entries(pool, order.order_id), answer["reversed"]))
    assert all(outcome == outcomes[0] for outcome in outcomes)
    assert outcomes[0][1] > 0


async def test_cancelling_confirmed_points_the_customer_spent_books_a_deduction_and_debt_and_the_balance_stays_at_zero(pool) -> None:
    first = accepted()
    await deliver(pool, first, handlers.on_order_accepted)
    await deliver(pool, PaymentCaptured(order_id=first.order_id, shop_id=SHOP, capture_id="c", amount=1, currency="JPY"), handlers.on_payment_captured)
    points = earned(first)
    spending = accepted(points_used=points - 10)
    await deliver(pool, spending, handlers.on_order_accepted)
    await deliver(pool, OrderCompleted(order_id=spending.order_id, shop_id=SHOP, external_order_no="X-2"), handlers.on_order_completed)

    await deliver(pool, cancelled(first.order_id), handlers.on_order_cancelled)

    assert await order_entries(pool, first.order_id) == [("accrued", points), ("confirmed", points), ("deducted", 10), ("debt", points - 10)]
    [(_, answer)] = await answers(pool, first.order_id)
    assert (answer["deducted"], answer["debt"], answer["reversed"], answer["released"]) == (10, points - 10, 0, 0)
    customer = await balance(pool)
    assert (customer.available, customer.debt, customer.lifetime) == (0, points - 10, points)

    await staff(pool, GrantPoints(shop_id=SHOP, issued_by="t", customer_id="C-1", points=points, reason="goodwill"), commands.grant_points)
    customer = await balance(pool)
    assert (customer.available, customer.debt) == (10, 0)


async def test_a_shop_that_allows_negative_balances_deducts_all_confirmed_points_without_debt(pool) -> None:
    allow = SetPointsSettings(shop_id=SHOP, issued_by="t", allow_negative=True)
    await staff(pool, allow, commands.set_points_settings)
    first = accepted()
    await deliver(pool, first, handlers.on_order_accepted)
    await deliver(pool, PaymentCaptured(order_id=first.order_id, shop_id=SHOP, capture_id="c", amount=1, currency="JPY"), handlers.on_payment_captured)
    spending = accepted(points_used=earned(first))
    await deliver(pool, spending, handlers.on_order_accepted)
    await deliver(pool, cancelled(first.order_id), handlers.on_order_cancelled)
    [(_, answer)] = await answers(pool, first.order_id)
    assert (answer["deducted"], answer["debt"]) == (earned(first), 0)
    customer = await balance(pool)
    assert (customer.available, customer.reserved, customer.debt) == (-earned(first), earned(first), 0)


async def test_the_same_cancellation_delivered_twice_books_and_answers_once(pool) -> None:
    order = accepted()
    await deliver(pool, order, handlers.on_order_accepted)
    cancel = cancelled(order.order_id)
    await deliver(pool, cancel, handlers.on_order_cancelled)
    await deliver(pool, cancel, handlers.on_order_cancelled)
    await deliver(pool, cancelled(order.order_id), handlers.on_order_cancelled)
    assert await order_entries(pool, order.order_id) == [("accrued", earned(order)), ("reversed", earned(order))]
    assert len(await answers(pool, order.order_id)) == 1


async def test_a_cancellation_of_an_order_points_never_saw_answers_on_the_named_customers_ledger_and_a_late_acceptance_books_nothing(pool) -> None:
    await deliver(pool, accepted("C-9"), handlers.on_order_accepted)
    await staff(pool, GrantPoints(shop_id=SHOP, issued_by="t", customer_id="C-9", points=100, reason="welcome"), commands.grant_points)
    order = accepted("C-9", points_used=50)
    await deliver(pool, cancelled(order.order_id, "C-9"), handlers.on_order_cancelled)
    [(key, answer)] = await answers(pool, order.order_id)
    assert key == f"{SHOP}:C-9".encode()
    assert (answer["reversed"], answer["deducted"], answer["debt"], answer["released"]) == (0, 0, 0, 0)
    await deliver(pool, order, handlers.on_order_accepted)
    assert await order_entries(pool, order.order_id) == []
    assert (await balance(pool, "C-9")).available == 100


async def test_a_sign_up_bonus_opens_the_account_of_a_customer_with_no_order_and_an_unmarked_unknown_customer_is_refused(pool) -> None:
    from ordermesh_servicekit.commands import CommandRefused

    with pytest.raises(CommandRefused) as refused:
        await staff(pool, GrantPoints(shop_id=SHOP, issued_by="t", customer_id="NEW-1", points=500, reason="入会特典"), commands.grant_points)
    assert any("unknown customer" in reason for reason in refused.value.reasons)
    bonus = GrantPoints(shop_id=SHOP, issued_by="t", customer_id="NEW-1", points=500, reason="入会特典", new_customer=True)
    await staff(pool, bonus, commands.grant_points)
    assert (await balance(pool, "NEW-1")).available == 500
    await staff(pool, bonus.model_copy(update={"event_id": uuid4(), "points": 100}), commands.grant_points)
    assert (await balance(pool, "NEW-1")).available == 600
