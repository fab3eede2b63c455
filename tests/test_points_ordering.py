"""End to end on the real broker: the points ledger ends right whatever order and however often its causes arrive
(a capture before the acceptance, a payment after the cancel, each duplicated), each shop's choice of the payment
event that confirms, and two orders of one customer racing for the same points — with the staff CLI's view."""

import asyncio
import json
import os
import uuid

from ordermesh_contracts import (
    Payment,
    PaymentCaptured,
    PaymentMethod,
    PaymentReceived,
    SetPointsSettings,
    order_id_for,
    topics,
)
from ordermesh_devstack.demo import demo_order
from support import eventually, fetch, publish_raw
from test_points_cancellation import balance_adding_up, cancel, order_ledger, pay_by_callback, place, waiting_for_stock
from test_points_edits import command, edit_of, known_customer_with, new_shop, publish_edit
from ops_cli import cli as run_cli


def captured(order, order_id) -> PaymentCaptured:
    return PaymentCaptured(order_id=order_id, shop_id=order.shop_id, capture_id=f"cap_{uuid.uuid4().hex[:8]}", amount=order.charges.total, currency="JPY")


def received(order, order_id) -> PaymentReceived:
    total = order.charges.total
    return PaymentReceived(
        order_id=order_id, shop_id=order.shop_id, method=PaymentMethod.BANK_TRANSFER, amount=total, received_total=total, balance=0,
        currency="JPY", source="bank_statement",
    )


async def publish(stack, topic: str, message, *, key: str | None = None) -> None:
    await publish_raw(stack.bootstrap, topic, message.model_dump_json().encode(), (key or message.kafka_key()).encode())


async def payments_partition_drained(stack, key: str) -> None:
    """Waits until points handled everything published so far on the payments partition of `key`: a capture of an
    order nobody placed, on that partition, must have reached the points database."""
    marker = uuid.uuid4()
    await publish_raw(
        stack.bootstrap, topics.PAYMENTS_EVENTS,
        PaymentCaptured(order_id=marker, shop_id="marker", capture_id="cap_marker", amount=1, currency="JPY").model_dump_json().encode(),
        key.encode(),
    )
    await eventually(lambda: fetch(stack.service_dsns["points"], "SELECT 1 FROM order_points WHERE order_id = $1", marker), timeout=60)


async def test_a_capture_before_the_acceptance_and_duplicates_of_both_book_one_accrual_and_one_confirmation(stack, recorder):
    shop = new_shop("ord")
    order = waiting_for_stock(995_001, shop)
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    early = captured(order, order_id)
    for _ in range(2):
        await publish(stack, topics.PAYMENTS_EVENTS, early)
    [waiting] = await eventually(
        lambda: fetch(stack.service_dsns["points"], "SELECT status, confirm_requested FROM order_points WHERE order_id = $1 AND confirm_requested", order_id)
    )
    assert waiting["status"] == "awaiting_accrual"

    await place(stack, order)
    [accepted] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=order_id, timeout=60)
    [confirmed] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsConfirmed", order_id=order_id, timeout=60)
    await publish_raw(stack.bootstrap, topics.ORDERS_EVENTS, accepted.value, accepted.key)
    await publish(stack, topics.PAYMENTS_EVENTS, early)
    await publish(stack, topics.PAYMENTS_EVENTS, captured(order, order_id))  # a second capture (new id) of the same order
    await payments_partition_drained(stack, str(order_id))
    # An edit changing nothing, after the duplicate on the same partition: once it is answered, the duplicate was handled.
    await publish_edit(stack, edit_of(order, order_id, quantity=3, points_used=0))
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsRecomputed", order_id=order_id, timeout=60)

    points = order.deliveries[0].lines[0].unit_price * 3 // 100
    assert confirmed.json()["points"] == points
    assert len(recorder.on(topics.POINTS_EVENTS, type="PointsAccrued", order_id=order_id)) == 1
    assert await order_ledger(stack, order_id) == [("accrued", points), ("confirmed", points)]
    assert len(recorder.on(topics.POINTS_EVENTS, type="PointsConfirmed", order_id=order_id)) == 1
    balance = await balance_adding_up(stack, shop, order.customer.customer_id)
    assert (balance["available"], balance["provisional"], balance["lifetime"]) == (points, 0, points)


async def test_a_payment_after_the_cancel_and_a_duplicated_cancel_leave_only_the_accrual_and_its_reversal(stack, recorder):
    shop = new_shop("ord")
    order = waiting_for_stock(995_002, shop, method=PaymentMethod.BANK_TRANSFER)
    order_id = await place(stack, order)
    [accrued] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsAccrued", order_id=order_id, timeout=60)
    cancelled = await cancel(stack, order, order_id, restore_stock=False, cancel_payment=False, notify_customer=False)
    await publish(stack, topics.ORDERS_EVENTS, cancelled)  # the same cancellation delivered twice
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsReversed", order_id=order_id, timeout=60)
    late = received(order, order_id)
    for _ in range(2):
        await publish(stack, topics.PAYMENTS_EVENTS, late)
    await payments_partition_drained(stack, str(order_id))

    points = accrued.json()["points"]
    assert await order_ledger(stack, order_id) == [("accrued", points), ("reversed", points)]
    assert len(recorder.on(topics.POINTS_EVENTS, type="PointsReversed", order_id=order_id)) == 1
    assert recorder.on(topics.POINTS_EVENTS, type="PointsConfirmed", order_id=order_id) == []
    [row] = await fetch(stack.service_dsns["points"], "SELECT status, paid_at FROM order_points WHERE order_id = $1", order_id)
    assert row["status"] == "reversed" and row["paid_at"] is not None
    balance = await balance_adding_up(stack, shop, order.customer.customer_id)
    assert (balance["available"], balance["provisional"], balance["lifetime"]) == (0, 0, 0)


async def _status(stack, order_id) -> str | None:
    rows = await fetch(stack.service_dsns["points"], "SELECT status FROM order_points WHERE order_id = $1 AND paid_at IS NOT NULL", order_id)
    return rows[0]["status"] if rows else None


async def test_each_shop_confirms_on_the_payment_event_it_chose_capture_or_money_received(stack, recorder):
    on_capture, on_receipt = new_shop("cap"), new_shop("rcv")
    await command(stack, SetPointsSettings(shop_id=on_capture, issued_by="e2e", confirm_on="captured"))
    await command(stack, SetPointsSettings(shop_id=on_receipt, issued_by="e2e", confirm_on="received"))
    card_here = demo_order(995_010, shop_id=on_capture)
    transfer_here = waiting_for_stock(995_011, on_capture, method=PaymentMethod.BANK_TRANSFER)
    cash_there = demo_order(995_012, shop_id=on_receipt).model_copy(update={"payment": Payment(method=PaymentMethod.CASH_ON_DELIVERY)})
    card_there = demo_order(995_013, shop_id=on_receipt)
    ids = {name: await place(stack, order) for name, order in
           (("card_here", card_here), ("transfer_here", transfer_here), ("cash_there", cash_there), ("card_there", card_there))}

    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=ids["card_here"], timeout=120)
    await pay_by_callback(stack, recorder, ids["transfer_here"], transfer_here.charges.total)
    [cash] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentReceived", order_id=ids["cash_there"], timeout=120)
    assert (cash.json()["method"], cash.json()["balance"]) == ("cash_on_delivery", 0)
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=ids["cash_there"], timeout=120)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCaptured", order_id=ids["card_there"], timeout=120)

    statuses = {name: await eventually(lambda i=order_id: _status(stack, i), timeout=30) for name, order_id in ids.items()}
    assert statuses == {"card_here": "confirmed", "transfer_here": "provisional", "cash_there": "confirmed", "card_there": "provisional"}
    for name in ("transfer_here", "card_there"):
        assert recorder.on(topics.POINTS_EVENTS, type="PointsConfirmed", order_id=ids[name]) == []
        assert [kind for kind, _ in await order_ledger(stack, ids[name])] == ["accrued"]
    assert len(recorder.on(topics.POINTS_EVENTS, type="PointsConfirmed", order_id=ids["cash_there"])) == 1


def cli(stack, *args: str) -> str:
    """Runs the staff CLI against the running suite; fails the test if it fails; returns what it printed."""
    done = run_cli(stack, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _cli(stack, *args: str) -> list:
    """The JSON documents a `--json` CLI read printed, in order."""
    decoder, text, documents = json.JSONDecoder(), cli(stack, *args).strip(), []
    while text:
        document, end = decoder.raw_decode(text)
        documents.append(document)
        text = text[end:].strip()
    return documents


async def test_two_orders_racing_for_the_same_points_use_only_what_exists_and_the_winner_spends_them_on_completion(stack, recorder):
    shop = new_shop("race")
    customer = await known_customer_with(stack, recorder, shop, 995_020, 300)

    def using(number: int):
        order = demo_order(number, shop_id=shop)  # same customer (number % 500), stocked: it completes
        return order.model_copy(update={"charges": order.charges.model_copy(update={"points_used": 200, "total": order.charges.total - 200})})

    first, second = using(995_520), using(996_020)
    first_id, second_id = await asyncio.gather(place(stack, first), place(stack, second))
    redeemed, failed = [], []
    for order_id in (first_id, second_id):
        await recorder.wait_for(topics.POINTS_EVENTS, type="PointsAccrued", order_id=order_id, timeout=60)
        redeemed += recorder.on(topics.POINTS_EVENTS, type="PointsRedeemed", order_id=order_id)
        failed += recorder.on(topics.POINTS_EVENTS, type="PointsRedemptionFailed", order_id=order_id)
    assert (len(redeemed), len(failed)) == (1, 1)
    assert failed[0].json()["requested"] == 200 and failed[0].json()["available"] < 200
    winner, loser = uuid.UUID(redeemed[0].json()["order_id"]), uuid.UUID(failed[0].json()["order_id"])
    [task] = await eventually(lambda: fetch(stack.service_dsns["orders"], "SELECT kind FROM order_tasks WHERE order_id = $1 AND kind = 'points_redemption_failed'", loser))
    assert task["kind"] == "points_redemption_failed"

    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=winner, timeout=120)
    await eventually(lambda: _has_committed(stack, winner), timeout=30)
    balance = await balance_adding_up(stack, shop, customer)
    assert (balance["available"], balance["reserved"], balance["used"]) == (100 + balance["lifetime"] - 300, 0, 200)

    [shown] = await asyncio.to_thread(_cli, stack, "points", "balance", "--shop", shop, "--customer", customer, "--json")
    assert [(row["available"], row["used"], row["lifetime"]) for row in shown] == [(balance["available"], 200, balance["lifetime"])]
    order_view, entries = await asyncio.to_thread(_cli, stack, "points", "order", str(winner), "--json")
    assert [(row["confirmed"], row["reservation"], row["reserved"]) for row in order_view] == [(True, "committed", 200)]
    assert [e["kind"] for e in entries] == ["accrued", "reserved", "confirmed", "committed"]
    [ledger] = await asyncio.to_thread(_cli, stack, "points", "ledger", "--shop", shop, "--customer", customer, "--json")
    assert sum(1 for e in ledger if e["kind"] == "granted") == 1 and ledger[-1]["kind"] == "committed"


async def _has_committed(stack, order_id) -> bool:
    return "committed" in [kind for kind, _ in await order_ledger(stack, order_id)]

