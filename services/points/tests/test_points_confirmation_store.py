"""Points confirmed by the payment events each shop chose, on a real PostgreSQL: the order's method tells captures
apart, a payment before the acceptance waits for it, an order paid with points confirms on its zero capture."""

import json
from pathlib import Path
from uuid import uuid4

from ordermesh_contracts import (
    OrderAccepted,
    OrderEdited,
    PaymentCaptured,
    PaymentReceived,
    SetPointsSettings,
    topics,
)
from ordermesh_points import commands, handlers, store
from ordermesh_points.domain.accrual import ShopPointsSettings
from ordermesh_servicekit.consuming import MessageContext

GOLDEN = Path(__file__).parents[3] / "contracts" / "tests" / "golden"
SHOP = "uji-matcha"


def ctx(pool, message) -> MessageContext:
    return MessageContext(pool, message.event_id, topics.POINTS_EVENTS, log=None)


def accepted(method: str, customer_id: str = "C-1") -> OrderAccepted:
    raw = json.loads((GOLDEN / "OrderAccepted.json").read_text(encoding="utf-8"))
    raw.update(event_id=str(uuid4()), order_id=str(uuid4()), shop_id=SHOP)
    raw["customer"].update(customer_id=customer_id, member_since="2024-04-01")
    raw["payment"] = {"method": method}
    return OrderAccepted.model_validate(raw)


def captured(order: OrderAccepted, amount: int = 1) -> PaymentCaptured:
    return PaymentCaptured(order_id=order.order_id, shop_id=SHOP, capture_id=f"cap_{uuid4().hex[:6]}", amount=amount, currency="JPY")


def received(order: OrderAccepted, method: str) -> PaymentReceived:
    return PaymentReceived(
        order_id=order.order_id, shop_id=SHOP, method=method, amount=100, received_total=100, balance=0, currency="JPY",
        source="cash_on_delivery" if method == "cash_on_delivery" else "bank_statement",
    )


async def choose(pool, **settings) -> dict:
    command = SetPointsSettings(shop_id=SHOP, issued_by="staff", **settings)
    await commands.set_points_settings(command, ctx(pool, command))
    async with pool.acquire() as conn:
        reply = await conn.fetchval("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id DESC LIMIT 1", topics.OPS_REPLIES)
    return json.loads(bytes(reply))


async def deliver(pool, *pairs) -> None:
    for message, handler in pairs:
        await handler(message, ctx(pool, message))


async def status(pool, order: OrderAccepted) -> tuple[str, list[str]]:
    async with pool.acquire() as conn:
        row = await store.order_row(conn, order.order_id)
    return row["status"], [entry["kind"] for entry in row["entries"]]


async def confirmed_events(pool) -> list[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.POINTS_EVENTS)
    return [body["order_id"] for body in (json.loads(bytes(r["payload"])) for r in rows) if body["type"] == "PointsConfirmed"]


async def test_the_chosen_events_are_kept_each_once_and_none_and_an_empty_list_read_back_as_given(pool) -> None:
    reply = await choose(pool, confirm_on="captured", confirm_on_events=["platform_paid", "cash_collected", "platform_paid"])
    assert reply["type"] == "CommandAccepted"
    assert reply["details"]["confirm_on_events"] == ["cash_collected", "platform_paid"]
    async with pool.acquire() as conn:
        assert (await store.shop_settings(conn, SHOP)).confirm_on_events == ("cash_collected", "platform_paid")
        await choose(pool, confirm_on_events=[])
        assert (await store.shop_settings(conn, SHOP)).confirm_on_events == ()
        await choose(pool, confirm_on="received")
        kept = await store.shop_settings(conn, SHOP)
        assert (kept.confirm_on, kept.confirm_on_events) == ("received", None)
        assert await store.shop_settings(conn, "no-such-shop") == ShopPointsSettings()


async def test_a_shop_confirming_only_on_cash_collected_leaves_a_captured_card_order_provisional_and_confirms_cash(pool) -> None:
    await choose(pool, confirm_on_events=["cash_collected"])
    card, cash, prepaid = accepted("card"), accepted("cash_on_delivery"), accepted("bank_transfer")
    await deliver(
        pool,
        (card, handlers.on_order_accepted), (cash, handlers.on_order_accepted), (prepaid, handlers.on_order_accepted),
        (captured(card), handlers.on_payment_captured),
        (received(cash, "cash_on_delivery"), handlers.on_payment_received),
        (received(prepaid, "bank_transfer"), handlers.on_payment_received),
    )
    assert await status(pool, card) == ("provisional", ["accrued"])
    assert await status(pool, prepaid) == ("provisional", ["accrued"])
    assert await status(pool, cash) == ("confirmed", ["accrued", "confirmed"])
    assert await confirmed_events(pool) == [str(cash.order_id)]
    async with pool.acquire() as conn:
        paid = set(await store.orders_paid_between(conn, SHOP, None, None))
    assert paid == {card.order_id, cash.order_id, prepaid.order_id}  # still there for staff's bulk confirm


async def test_a_deferred_capture_confirms_where_a_card_capture_does_not(pool) -> None:
    await choose(pool, confirm_on_events=["deferred_captured", "platform_paid"])
    card, deferred, platform = accepted("card"), accepted("deferred"), accepted("platform")
    for order in (card, deferred, platform):
        await deliver(pool, (order, handlers.on_order_accepted), (captured(order), handlers.on_payment_captured))
    assert (await status(pool, card))[0] == "provisional"
    assert (await status(pool, deferred))[0] == "confirmed"
    assert (await status(pool, platform))[0] == "confirmed"


async def test_a_capture_before_the_acceptance_waits_for_the_method_then_confirms_a_card_order_only(pool) -> None:
    await choose(pool, confirm_on_events=["card_captured"])
    card, deferred = accepted("card"), accepted("deferred")
    for order in (card, deferred):
        early = captured(order)
        await deliver(pool, (early, handlers.on_payment_captured), (captured(order), handlers.on_payment_captured))
        async with pool.acquire() as conn:
            row = await store.order_row(conn, order.order_id)
        assert (row["status"], row["confirm_requested"], row["payments_waiting"]) == ("awaiting_accrual", False, ["captured"])
        await deliver(pool, (order, handlers.on_order_accepted))
    assert await status(pool, card) == ("confirmed", ["accrued", "confirmed"])
    assert await status(pool, deferred) == ("provisional", ["accrued"])
    async with pool.acquire() as conn:
        left = await conn.fetch("SELECT payment_method, payments_waiting FROM order_points ORDER BY payment_method")
    assert [(r["payment_method"], r["payments_waiting"]) for r in left] == [("card", []), ("deferred", [])]


async def test_a_points_only_order_confirms_on_its_zero_capture_whatever_the_shop_chose_unless_by_hand_only(pool) -> None:
    await choose(pool, confirm_on_events=["cash_collected"])
    listed = accepted("points_only")
    await deliver(pool, (listed, handlers.on_order_accepted), (captured(listed, amount=0), handlers.on_payment_captured))
    assert (await status(pool, listed))[0] == "confirmed"

    free_card = accepted("card", "C-4")  # a card order whose total was 0: settled by a capture of 0 as well
    await deliver(pool, (captured(free_card, amount=0), handlers.on_payment_captured), (free_card, handlers.on_order_accepted))
    assert (await status(pool, free_card))[0] == "confirmed"

    await choose(pool, confirm_on="received")
    early = accepted("points_only", "C-2")  # its capture comes first: only the acceptance tells it was paid with points
    await deliver(pool, (captured(early, amount=0), handlers.on_payment_captured), (early, handlers.on_order_accepted))
    assert (await status(pool, early))[0] == "confirmed"

    await choose(pool, confirm_on_events=[])
    by_hand = accepted("points_only", "C-3")
    await deliver(pool, (by_hand, handlers.on_order_accepted), (captured(by_hand, amount=0), handlers.on_payment_captured))
    assert await status(pool, by_hand) == ("provisional", ["accrued"])


async def test_an_edit_names_the_method_a_later_capture_is_told_apart_by(pool) -> None:
    await choose(pool, confirm_on_events=["card_captured"])
    order = accepted("deferred")
    raw = json.loads((GOLDEN / "OrderEdited.json").read_text(encoding="utf-8"))
    raw.update(event_id=str(uuid4()), order_id=str(order.order_id), shop_id=SHOP, edit_no=1, payment={"method": "card"})
    raw["customer"].update(customer_id="C-1")
    edit = OrderEdited.model_validate(raw)
    await deliver(pool, (order, handlers.on_order_accepted), (edit, handlers.on_order_edited))
    await deliver(pool, (captured(order), handlers.on_payment_captured))
    async with pool.acquire() as conn:
        assert (await store.order_row(conn, order.order_id))["payment_method"] == "card"
    assert (await status(pool, order))[0] == "confirmed"


async def test_the_one_knob_choice_still_confirms_a_capture_before_the_acceptance_at_once(pool) -> None:
    await choose(pool, confirm_on="captured")
    order = accepted("deferred")
    await deliver(pool, (captured(order), handlers.on_payment_captured))
    async with pool.acquire() as conn:
        row = await store.order_row(conn, order.order_id)
    assert (row["confirm_requested"], row["payments_waiting"]) == (True, [])
    await deliver(pool, (order, handlers.on_order_accepted))
    assert await status(pool, order) == ("confirmed", ["accrued", "confirmed"])
