"""Edits, returns and cancellations across the whole suite on the real broker (issue 4's "done when"): after each,
the order's totals, the payment ledger, stock levels and the points ledger agree — each read from the owning
service's own database."""

import json
import uuid

import pytest

from ordermesh_contracts import (
    CancelOrder,
    EditOrder,
    GrantPoints,
    LineChange,
    MarkPaymentReceived,
    OrderLine,
    Payment,
    PaymentMethod,
    SetPaymentSettings,
    order_id_for,
    topics,
)
from ordermesh_devstack.demo import DEMO_SHOP, demo_order
from ordermesh_ops.client import Connection, send_command
from support import eventually, fetch, publish_raw

POINTS_RATE_PERCENT = 1  # the demo shop's default rate; demo customers are members


def sku(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def order_of(number: int, lines: list[OrderLine], *, shipping_fee: int = 550, payment: Payment | None = None):
    base = demo_order(number)
    merchandise = sum(line.unit_price * line.quantity for line in lines)
    return base.model_copy(update={
        "deliveries": [base.deliveries[0].model_copy(update={"lines": lines})],
        "charges": base.charges.model_copy(update={"shipping_fee": shipping_fee, "total": merchandise + shipping_fee}),
        "payment": payment or Payment(method="card", card_token="tok_visa"),
    })


def line(code: str, quantity: int, unit_price: int = 1000) -> OrderLine:
    return OrderLine(sku=code, name=f"商品 {code}", unit_price=unit_price, quantity=quantity, tax_rate_percent=10)


async def place(stack, order) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def send(stack, topic: str, command) -> dict:
    return await send_command(Connection(stack.bootstrap, {}, stack.api_token), topic, command)


async def order_state(stack, order_id) -> dict:
    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage, total, snapshot, flags FROM orders WHERE order_id = $1", order_id)
    return {"stage": row["stage"], "total": row["total"], "snapshot": json.loads(row["snapshot"]), **json.loads(row["flags"])}


async def stock_of(stack, skus: list[str]) -> dict[str, tuple[int, int]]:
    rows = await fetch(stack.service_dsns["shipping"], "SELECT sku, on_hand, allocated FROM stock WHERE sku = ANY($1::text[])", skus)
    return {row["sku"]: (row["on_hand"], row["allocated"]) for row in rows}


async def captured(stack, order_id) -> int:
    rows = await fetch(
        stack.service_dsns["payments"],
        "SELECT coalesce(sum(amount), 0) AS total FROM gateway_calls WHERE order_id = $1 AND operation = 'capture' AND status = 'succeeded'",
        order_id,
    )
    return rows[0]["total"]


async def points_by_kind(stack, order_id) -> dict[str, int]:
    rows = await fetch(stack.service_dsns["points"], "SELECT kind, sum(points) AS points FROM ledger WHERE order_id = $1 GROUP BY kind", order_id)
    return {row["kind"]: row["points"] for row in rows}


def edit(order_id, *changes: LineChange, **fields) -> EditOrder:
    return EditOrder(
        shop_id=DEMO_SHOP, issued_by="staff:e2e", order_id=order_id, lines=list(changes),
        **{"adjust_stock": True, "reason": "customer called", **fields},
    )


async def test_an_edit_that_lowers_quantities_returns_a_line_and_adds_one_lets_a_short_order_ship_and_everything_agrees(stack, recorder):
    a, b, c = sku("EDIT-A"), sku("EDIT-B"), sku("EDIT-C")
    await stack.set_stock({a: 2, b: 0, c: 1})
    order = order_of(993_001, [line(a, 3), line(b, 1)])
    order_id = await place(stack, order)
    [allocated] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=order_id, timeout=60)
    assert allocated.json()["allocation"] == "partial"
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id)

    reply = await send(stack, topics.ORDERS_COMMANDS, edit(
        order_id,
        LineChange(sku=a, quantity=2),
        LineChange(sku=b, quantity=0),
        LineChange(sku=c, quantity=1, name="追加商品", unit_price=500, tax_rate_percent=10),
        shipping_fee=0,
        notify_customer=True,
    ))
    assert reply["type"] == "CommandAccepted", reply
    new_total = 2 * 1000 + 500
    assert reply["details"]["total"] == new_total

    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)
    state = await order_state(stack, order_id)
    assert (state["stage"], state["total"], state["amount_change"], state["shipping_edit"]) == ("completed", new_total, "changed", "applied")
    assert await captured(stack, order_id) == new_total
    assert await stock_of(stack, [a, b, c]) == {a: (0, 0), b: (0, 0), c: (0, 0)}
    points = await points_by_kind(stack, order_id)
    assert points.get("confirmed") == (2 * 1000 + 500) * POINTS_RATE_PERCENT // 100
    await recorder.wait_for(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id, mail_kind="order_changed")


@pytest.mark.parametrize("restore_stock", [True, False])
@pytest.mark.parametrize("cancel_payment", [True, False])
@pytest.mark.parametrize("notify_customer", [True, False])
async def test_a_cancellation_reverses_exactly_what_staff_chose_and_every_service_agrees(
    stack, recorder, restore_stock, cancel_payment, notify_customer
):
    code = sku("CXL")
    await stack.set_stock({code: 1})
    number = 993_100 + 4 * restore_stock + 2 * cancel_payment + notify_customer
    order = order_of(number, [line(code, 2)])
    order_id = await place(stack, order)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=order_id, timeout=60)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id)
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsAccrued", order_id=order_id)
    assert await stock_of(stack, [code]) == {code: (1, 1)}

    reply = await send(stack, topics.ORDERS_COMMANDS, CancelOrder(
        shop_id=DEMO_SHOP, issued_by="staff:e2e", order_id=order_id, reason="customer called",
        restore_stock=restore_stock, cancel_payment=cancel_payment, notify_customer=notify_customer,
    ))
    assert reply["type"] == "CommandAccepted", reply

    async def every_service_answered():
        state = await order_state(stack, order_id)
        done = state["shipping_cancellation"] == "done" and state["points"] == "reversed"
        done = done and (not cancel_payment or state["payment_cancellation"] == "voided")
        done = done and (not notify_customer or state["mail_order_cancelled"] == "sent")
        return state if done else None

    state = await eventually(every_service_answered, timeout=60)
    assert state["stage"] == "cancelled"
    assert await stock_of(stack, [code]) == {code: (1, 0 if restore_stock else 1)}
    [payment] = await fetch(stack.service_dsns["payments"], "SELECT status, captured_amount FROM payments WHERE order_id = $1", order_id)
    assert payment["captured_amount"] == 0
    voids = await fetch(stack.service_dsns["payments"], "SELECT 1 FROM gateway_calls WHERE order_id = $1 AND operation = 'void'", order_id)
    assert len(voids) == (1 if cancel_payment else 0)
    points = await points_by_kind(stack, order_id)
    assert points["accrued"] == points["reversed"] == 2000 * POINTS_RATE_PERCENT // 100
    mails = recorder.on(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id, mail_kind="order_cancelled")
    assert len(mails) == (1 if notify_customer else 0)


async def money_in(stack, order_id) -> int:
    """What payments holds as collected for the order: captured at the gateway or received outside one."""
    [row] = await fetch(
        stack.service_dsns["payments"], "SELECT captured_amount, received_amount FROM payments WHERE order_id = $1", order_id
    )
    return row["captured_amount"] + row["received_amount"]


@pytest.mark.parametrize(
    "method",
    [PaymentMethod.CARD, PaymentMethod.DEFERRED, PaymentMethod.BANK_TRANSFER, PaymentMethod.CASH_ON_DELIVERY],
)
async def test_each_payment_method_follows_an_edit_that_raises_the_total_and_the_order_completes_with_everything_agreeing(
    stack, recorder, method
):
    a, b, c = sku("M-A"), sku("M-B"), sku("M-C")
    await stack.set_stock({a: 1, b: 0, c: 1})
    number = 993_200 + list(PaymentMethod).index(method)
    payment = Payment(method=method, card_token="tok_visa") if method is PaymentMethod.CARD else Payment(method=method)
    order = order_of(number, [line(a, 1), line(b, 1)], payment=payment)
    points_only = method is PaymentMethod.POINTS_ONLY
    if points_only:
        # a customer of their own, known to points through an earlier order, with points granted to spend
        customer = order.customer.model_copy(update={"customer_id": f"PO-{uuid.uuid4().hex[:8]}"})
        earlier = demo_order(number + 50).model_copy(update={"customer": customer})
        await recorder.wait_for(topics.POINTS_EVENTS, type="PointsAccrued", order_id=await place(stack, earlier), timeout=60)
        order = order.model_copy(update={"customer": customer, "charges": order.charges.model_copy(update={"points_used": 2550, "total": 0})})
        grant = GrantPoints(shop_id=DEMO_SHOP, issued_by="staff:e2e", customer_id=order.customer.customer_id, points=10_000, reason="e2e")
        assert (await send(stack, topics.POINTS_COMMANDS, grant))["type"] == "CommandAccepted"
    order_id = await place(stack, order)
    if method is PaymentMethod.BANK_TRANSFER:
        await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentRequested", order_id=order_id, timeout=60)
    else:
        await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=order_id, allocation="partial", timeout=60)

    # B is returned (kept at 0), C added: merchandise 1000 + 2000, shipping 550 → 3550 (was 2550)
    reply = await send(stack, topics.ORDERS_COMMANDS, edit(
        order_id,
        LineChange(sku=b, quantity=0),
        LineChange(sku=c, quantity=1, name="追加商品", unit_price=2000, tax_rate_percent=10),
        **({"points_used": 3550} if points_only else {}),
    ))
    assert reply["type"] == "CommandAccepted", reply
    expected_total = 0 if points_only else 3550
    assert reply["details"]["total"] == expected_total
    [changed] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAmountChanged", order_id=order_id, timeout=60)
    outcome = {
        PaymentMethod.CARD: "reauthorized", PaymentMethod.DEFERRED: "credit_rechecked", PaymentMethod.BANK_TRANSFER: "request_updated",
        PaymentMethod.CASH_ON_DELIVERY: "request_updated", PaymentMethod.POINTS_ONLY: "nothing_to_change",
    }[method]
    assert changed.json()["outcome"] == outcome
    if method is PaymentMethod.BANK_TRANSFER:
        requests = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentRequested", order_id=order_id, count=2)
        assert [r.json()["amount"] for r in requests] == [2550, 3550]
        paid = MarkPaymentReceived(shop_id=DEMO_SHOP, issued_by="staff:e2e", order_id=order_id, amount=3550, reason="paid at the counter")
        assert (await send(stack, topics.PAYMENTS_COMMANDS, paid))["type"] == "CommandAccepted"

    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)
    state = await order_state(stack, order_id)
    assert (state["stage"], state["total"]) == ("completed", expected_total)
    assert await money_in(stack, order_id) == expected_total
    assert await stock_of(stack, [a, b, c]) == {a: (0, 0), b: (0, 0), c: (0, 0)}
    points = await points_by_kind(stack, order_id)
    assert points.get("confirmed") == 3000 * POINTS_RATE_PERCENT // 100
    if points_only:
        assert points["reserved"] - points.get("released", 0) == 3550

        async def committed():
            return (await points_by_kind(stack, order_id)).get("committed")

        assert await eventually(committed, timeout=30) == 3550


async def test_a_captured_card_order_edited_by_every_remaining_kind_is_refunded_the_difference_and_everything_agrees(stack, recorder):
    shop = f"captured-{uuid.uuid4().hex[:6]}"
    settings = SetPaymentSettings(shop_id=shop, issued_by="staff:e2e", capture_at_authorization=True)
    assert (await send(stack, topics.PAYMENTS_COMMANDS, settings))["type"] == "CommandAccepted"
    a, b = sku("CAP-A"), sku("CAP-B")
    await stack.set_stock({a: 2, b: 1})
    order = order_of(993_300, [line(a, 3), line(b, 1)]).model_copy(update={"shop_id": shop})
    order = order.model_copy(update={"charges": order.charges.model_copy(update={"payment_fee": 330, "total": order.charges.total + 330})})
    order_id = await place(stack, order)
    [capture] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCaptured", order_id=order_id, timeout=60)
    assert capture.json()["amount"] == 4000 + 550 + 330
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=order_id, allocation="partial")

    # B removed, one A booked as cancelled (kept on record), A's manual discount 100, payment fee waived
    reply = await send(stack, topics.ORDERS_COMMANDS, edit(
        order_id,
        LineChange(sku=b, remove=True),
        LineChange(sku=a, book_cancelled=1, line_discount=100),
        payment_fee=0,
    ).model_copy(update={"shop_id": shop}))
    assert reply["type"] == "CommandAccepted", reply
    new_total = 2 * 1000 - 100 + 550
    assert reply["details"]["total"] == new_total and reply["details"]["balance"] == new_total - 4880
    [edited] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderEdited", order_id=order_id)
    assert sorted((c["sku"], c["change"]) for c in edited.json()["changes"]) == sorted([(b, "removed"), (a, "cancelled_booked")])
    assert sorted(l["quantity"] for l in edited.json()["deliveries"][0]["lines"]) == [-1, 3]
    [changed] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAmountChanged", order_id=order_id, timeout=60)
    assert (changed.json()["outcome"], changed.json()["refunded"]) == ("refunded", 4880 - new_total)

    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)
    state = await order_state(stack, order_id)
    assert (state["stage"], state["total"], state["refund"]) == ("completed", new_total, "done")
    [payment] = await fetch(stack.service_dsns["payments"], "SELECT captured_amount, refunded_amount FROM payments WHERE order_id = $1", order_id)
    assert payment["captured_amount"] - payment["refunded_amount"] == new_total
    [paid] = await fetch(stack.service_dsns["orders"], "SELECT paid_captured + paid_received - paid_refunded AS paid FROM orders WHERE order_id = $1", order_id)
    assert paid["paid"] == new_total
    assert await stock_of(stack, [a, b]) == {a: (0, 0), b: (1, 0)}
    # captured at authorization, the points were confirmed before the edit: an edit never changes confirmed points
    [recomputed] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsRecomputed", order_id=order_id)
    assert recomputed.json()["confirmed_unchanged"] is True
    points = await points_by_kind(stack, order_id)
    assert points == {"accrued": 4000 * POINTS_RATE_PERCENT // 100, "confirmed": 4000 * POINTS_RATE_PERCENT // 100}


async def test_an_edit_the_warehouse_can_no_longer_follow_is_reversed_with_a_task_and_money_stock_and_points_follow_what_ships(stack, recorder):
    code = f"PICKED-{uuid.uuid4().hex[:8]}"  # the sandbox warehouse picks it at once: a cancel is answered already_picked
    await stack.set_stock({code: 10})
    order = order_of(993_400, [line(code, 2)])
    order = order.model_copy(update={"deliveries": [order.deliveries[0].model_copy(update={"carrier": "yamato_b2"})]})
    order_id = await place(stack, order)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=order_id, timeout=90)

    reply = await send(stack, topics.ORDERS_COMMANDS, edit(order_id, LineChange(sku=code, quantity=3)))
    assert reply["type"] == "CommandAccepted" and reply["details"]["total"] == 3550, reply
    [refused] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShippingEditRefused", order_id=order_id, timeout=60)
    assert "already_picked" in refused.json()["reason"]
    [_, reversal] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderEdited", order_id=order_id, count=2, timeout=60)
    body = reversal.json()
    assert (body["edit_no"], body["causation_id"], body["charges"]["total"]) == (2, refused.json()["event_id"], 2550)
    assert [(c["sku"], c["change"], c["previous_quantity"], c["quantity"]) for c in body["changes"]] == [(code, "changed", 3, 2)]

    async def money_followed():
        changes = recorder.on(topics.PAYMENTS_EVENTS, type="PaymentAmountChanged", order_id=order_id)
        return changes if len(changes) == 2 else None

    first, second = await eventually(money_followed, timeout=60)
    assert (first.json()["amount"], second.json()["amount"]) == (3550, 2550)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShippingEditApplied", order_id=order_id, edit_no=2, timeout=30)

    async def orders_took_the_applied_edit():  # orders reads ShippingEditApplied after the recorder can have seen it
        state = await order_state(stack, order_id)
        return state if state["shipping_edit"] == "applied" else None

    state = await eventually(orders_took_the_applied_edit, timeout=30)  # the refusal stays a task for staff
    assert state["total"] == 2550
    assert [line["quantity"] for line in state["snapshot"]["deliveries"][0]["lines"]] == [2]
    tasks = await fetch(stack.service_dsns["orders"], "SELECT kind FROM order_tasks WHERE order_id = $1 AND status = 'open'", order_id)
    assert "shipping_edit_refused" in [task["kind"] for task in tasks]
    assert await stock_of(stack, [code]) == {code: (10, 2)}

    async def points_followed():
        points = await points_by_kind(stack, order_id)
        return points if points.get("accrued", 0) - points.get("reversed", 0) == 2000 * POINTS_RATE_PERCENT // 100 and "reversed" in points else None

    await eventually(points_followed, timeout=30)
