"""End to end on the real broker: an OrderCancelled undoes the order's points — provisional points reversed and points
used given back, or confirmed points deducted with the part the balance can't carry kept as debt (and a task for staff)."""

import json
import time
import uuid

import httpx

from ordermesh_contracts import Charges, GrantPoints, OrderCancelled, Payment, PaymentMethod, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_ops.client import Connection, send_command
from ordermesh_servicekit.signing import sign
from support import eventually, fetch, publish_raw

SIGNED = {"accrued": 1, "granted": 1, "reversed": -1, "deducted": -1, "expired": -1, "debt_settled": -1}


def new_shop() -> str:
    return f"cxl-{uuid.uuid4().hex[:8]}"


def waiting_for_stock(number: int, shop: str, *, points_used: int = 0, method: PaymentMethod = PaymentMethod.CARD):
    """A demo order for a sku nobody stocks: it waits in awaiting_allocation, where it may be cancelled."""
    base = demo_order(number, shop_id=shop)
    line = base.deliveries[0].lines[0].model_copy(update={"sku": f"NOSTOCK-{uuid.uuid4().hex[:8]}", "quantity": 3})
    merchandise = line.unit_price * line.quantity
    charges = Charges(shipping_fee=base.charges.shipping_fee, points_used=points_used, total=merchandise + base.charges.shipping_fee - points_used)
    payment = Payment(method=method, card_token="tok_visa") if method is PaymentMethod.CARD else Payment(method=method)
    return base.model_copy(update={"deliveries": [base.deliveries[0].model_copy(update={"lines": [line]})], "charges": charges, "payment": payment})


async def place(stack, order) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def cancel(stack, order, order_id, **choices) -> OrderCancelled:
    cancelled = OrderCancelled(
        order_id=order_id, shop_id=order.shop_id, external_order_no=order.external_order_no, customer_id=order.customer.customer_id,
        reason="customer asked", cancelled_by="staff:e2e", **choices,
    )
    await publish_raw(stack.bootstrap, topics.ORDERS_EVENTS, cancelled.model_dump_json().encode(), cancelled.kafka_key().encode())
    return cancelled


async def stage_of(stack, order_id) -> str | None:
    rows = await fetch(stack.service_dsns["orders"], "SELECT stage FROM orders WHERE order_id = $1", order_id)
    return rows[0]["stage"] if rows else None


async def order_ledger(stack, order_id) -> list[tuple[str, int]]:
    rows = await fetch(stack.service_dsns["points"], "SELECT kind, points FROM ledger WHERE order_id = $1 ORDER BY entry_id", order_id)
    return [(row["kind"], row["points"]) for row in rows]


async def balance_adding_up(stack, shop: str, customer_id: str) -> dict:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(
            f"http://127.0.0.1:{stack.processes['points'].http_port}/api/points/balance",
            params={"shop_id": shop, "customer_id": customer_id}, headers={"Authorization": f"Bearer {stack.api_token}"},
        )
    balance = response.json()
    rows = await fetch(stack.service_dsns["points"], "SELECT kind, points FROM ledger WHERE shop_id = $1 AND customer_id = $2", shop, customer_id)
    assert sum(SIGNED.get(r["kind"], 0) * r["points"] for r in rows) == (
        balance["available"] + balance["provisional"] + balance["reserved"] + balance["used"]
    )
    return balance


async def test_cancelling_an_order_waiting_for_stock_reverses_its_provisional_points_and_gives_back_the_points_it_used(stack, recorder):
    shop = new_shop()
    first = waiting_for_stock(980_001, shop)
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsAccrued", order_id=await place(stack, first), timeout=60)
    customer = first.customer.customer_id
    ops = Connection(bootstrap=stack.bootstrap, service_urls={}, token=stack.api_token)
    granted = await send_command(ops, topics.POINTS_COMMANDS, GrantPoints(shop_id=shop, issued_by="e2e", customer_id=customer, points=300, reason="welcome"))
    assert granted["type"] == "CommandAccepted"

    order = waiting_for_stock(980_501, shop, points_used=200)  # same customer (number % 500)
    order_id = await place(stack, order)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=order_id, allocation="none", timeout=90)
    [accrued] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsAccrued", order_id=order_id)
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsRedeemed", order_id=order_id)
    assert await eventually(lambda: _is(stage_of(stack, order_id), "awaiting_allocation"))
    before = await balance_adding_up(stack, shop, customer)

    cancelled = await cancel(stack, order, order_id, restore_stock=False, cancel_payment=False, notify_customer=False)
    [answer] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsReversed", order_id=order_id)

    earned = accrued.json()["points"]
    body = answer.json()
    assert (body["reversed"], body["released"], body["deducted"], body["debt"]) == (earned, 200, 0, 0)
    assert body["causation_id"] == str(cancelled.event_id) and answer.key == f"{shop}:{customer}".encode()
    assert await order_ledger(stack, order_id) == [("accrued", earned), ("reserved", 200), ("released", 200), ("reversed", earned)]
    [row] = await fetch(stack.service_dsns["points"], "SELECT status, reservation, reserved FROM order_points WHERE order_id = $1", order_id)
    assert (row["status"], row["reservation"], row["reserved"]) == ("reversed", "released", 0)
    after = await balance_adding_up(stack, shop, customer)
    assert after["available"] == before["available"] + 200
    assert (after["reserved"], after["provisional"]) == (before["reserved"] - 200, before["provisional"] - earned)


async def _is(value, expected) -> bool:
    return (await value) == expected


async def pay_by_callback(stack, recorder, order_id, amount: int) -> None:
    [requested] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentRequested", order_id=order_id)
    body = json.dumps(
        {"event_id": f"evt_{uuid.uuid4().hex}", "reference": requested.json()["reference"], "amount": amount, "currency": "JPY",
         "paid_at": "2025-03-14T03:00:00+00:00"}
    ).encode()
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"http://127.0.0.1:{stack.processes['payments'].http_port}/callbacks/payments", content=body,
            headers={"X-Ordermesh-Signature": sign(stack.payment_callback_secret, body, int(time.time())), "Content-Type": "application/json"},
        )
    assert response.status_code == 202


async def test_cancelling_an_order_whose_points_were_confirmed_and_spent_books_a_deduction_and_debt_not_a_negative_balance_and_staff_get_a_task(stack, recorder):
    shop = new_shop()
    paid = waiting_for_stock(980_002, shop, method=PaymentMethod.BANK_TRANSFER)
    paid_id = await place(stack, paid)
    await pay_by_callback(stack, recorder, paid_id, paid.charges.total)
    [confirmed] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsConfirmed", order_id=paid_id, timeout=60)
    points = confirmed.json()["points"]
    assert points > 1
    customer = paid.customer.customer_id

    spending = waiting_for_stock(980_502, shop, points_used=points - 1)  # same customer (number % 500)
    spending_id = await place(stack, spending)
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsRedeemed", order_id=spending_id, timeout=60)
    assert (await balance_adding_up(stack, shop, customer))["available"] == 1
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=paid_id, allocation="none", timeout=90)

    await cancel(stack, paid, paid_id, restore_stock=True, cancel_payment=True, notify_customer=False)
    [answer] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsReversed", order_id=paid_id)

    body = answer.json()
    assert (body["deducted"], body["debt"], body["reversed"], body["released"]) == (1, points - 1, 0, 0)
    assert await order_ledger(stack, paid_id) == [("accrued", points), ("confirmed", points), ("deducted", 1), ("debt", points - 1)]
    balance = await balance_adding_up(stack, shop, customer)
    assert (balance["available"], balance["debt"], balance["lifetime"], balance["reserved"]) == (0, points - 1, points, points - 1)
    [task] = await eventually(
        lambda: fetch(stack.service_dsns["orders"], "SELECT kind FROM order_tasks WHERE order_id = $1 AND kind = 'points_debt' AND status = 'open'", paid_id),
        timeout=30,
    )
    assert task["kind"] == "points_debt"
