"""End to end on the real broker: a shop chooses with the staff CLI the payment events that confirm points, one by
one; confirming only on cash collected, a card order's points stay provisional after its capture (until staff
confirm them) and a cash-on-delivery order's are confirmed when the carrier collects the cash."""

import asyncio

from ordermesh_contracts import Payment, PaymentMethod, topics
from ordermesh_devstack.demo import demo_order
from support import eventually, fetch
from test_points_cancellation import balance_adding_up, order_ledger, place
from test_points_edits import new_shop
from test_points_ordering import _cli, cli


async def _paid_status(stack, order_id) -> str | None:
    rows = await fetch(stack.service_dsns["points"], "SELECT status FROM order_points WHERE order_id = $1 AND paid_at IS NOT NULL", order_id)
    return rows[0]["status"] if rows else None


async def test_a_shop_confirming_only_on_cash_collected_keeps_a_captured_card_orders_points_provisional_and_confirms_cash_on_delivery(stack, recorder):
    shop = new_shop("cash")
    printed = await asyncio.to_thread(cli, stack, "points", "settings", "--shop", shop, "--confirm-on-event", "cash_collected", "--rate-percent", "2")
    assert "accepted" in printed
    [[shown]] = await asyncio.to_thread(_cli, stack, "points", "settings", "--shop", shop, "--json")
    assert (shown["confirm_on_events"], shown["rate_percent"], shown["confirm_on"]) == (["cash_collected"], 2, "either")

    card = demo_order(997_110, shop_id=shop)
    cash = demo_order(997_111, shop_id=shop).model_copy(update={"payment": Payment(method=PaymentMethod.CASH_ON_DELIVERY)})
    card_id, cash_id = await place(stack, card), await place(stack, cash)

    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCaptured", order_id=card_id, timeout=120)
    [collected] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentReceived", order_id=cash_id, timeout=120)
    assert (collected.json()["method"], collected.json()["balance"]) == ("cash_on_delivery", 0)
    [confirmed] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsConfirmed", order_id=cash_id, timeout=60)
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=cash_id, timeout=120)
    assert await eventually(lambda: _paid_status(stack, card_id), timeout=30) == "provisional"

    [accrued] = recorder.on(topics.POINTS_EVENTS, type="PointsAccrued", order_id=card_id)
    card_points = accrued.json()["points"]
    merchandise = sum(line.unit_price * line.quantity - line.line_discount for d in card.deliveries for line in d.lines)
    assert card_points == merchandise * 2 // 100 > 0  # the rate set by the CLI
    assert await order_ledger(stack, card_id) == [("accrued", card_points)]
    assert recorder.on(topics.POINTS_EVENTS, type="PointsConfirmed", order_id=card_id) == []
    cash_points = confirmed.json()["points"]
    assert cash_points > 0
    assert await order_ledger(stack, cash_id) == [("accrued", cash_points), ("confirmed", cash_points)]
    [rows] = [await fetch(stack.service_dsns["points"], "SELECT order_id, payment_method FROM order_points WHERE shop_id = $1", shop)]
    assert {row["order_id"]: row["payment_method"] for row in rows} == {card_id: "card", cash_id: "cash_on_delivery"}

    for customer, provisional, available in (
        (card.customer.customer_id, card_points, 0),
        (cash.customer.customer_id, 0, cash_points),
    ):
        balance = await balance_adding_up(stack, shop, customer)
        assert (balance["provisional"], balance["available"]) == (provisional, available)

    # The card order waits in shipped for its points; staff confirm them by hand, and it completes.
    await asyncio.to_thread(cli, stack, "points", "bulk-confirm", "--shop", shop, "--order", str(card_id))
    [by_hand] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsConfirmed", order_id=card_id, timeout=60)
    assert by_hand.json()["points"] == card_points
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=card_id, timeout=120)

    await asyncio.to_thread(cli, stack, "points", "settings", "--shop", shop, "--confirm-on", "captured")
    [[back]] = await asyncio.to_thread(_cli, stack, "points", "settings", "--shop", shop, "--json")
    assert (back["confirm_on_events"], back["confirm_on"], back["rate_percent"]) == (None, "captured", 2)
