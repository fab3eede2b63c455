"""Returns after shipping, end to end on the real suite: a completed card order takes back part of a line and then
another line — refunded through the gateway, points deducted, stock back only when chosen, the customer mailed when
asked, the order showing its returns — a bank-transfer order's return becomes a refund owed, and a return larger than
what shipped or on an order not shipped is refused with the reason."""

import json

import httpx

from ordermesh_contracts import MarkPaymentReceived, Payment, PaymentMethod, ReturnItems, ReturnLine, topics
from support import eventually, fetch
from test_edits_across_suite import line, order_of, place, points_by_kind, send, sku, stock_of
from test_payments_reconciliation import ledger, stalled

STAFF = {"shop_id": "demo-shop", "issued_by": "staff:e2e"}


def _return(order_id, *lines: tuple[str, int], restock: bool, notify: bool = False) -> ReturnItems:
    return ReturnItems(
        **STAFF, order_id=order_id, lines=[ReturnLine(sku=code, quantity=units) for code, units in lines],
        restock=restock, notify_customer=notify, reason="came back",
    )


async def _view(stack, order_id) -> dict:
    url = f"http://127.0.0.1:{stack.processes['orders'].http_port}/api/orders/order"
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(url, params={"order_id": str(order_id)}, headers={"Authorization": f"Bearer {stack.api_token}"})
    response.raise_for_status()
    return response.json()


async def _flag(stack, order_id, name: str, value: str) -> dict | None:
    [row] = await fetch(stack.service_dsns["orders"], "SELECT flags FROM orders WHERE order_id = $1", order_id)
    flags = json.loads(row["flags"])
    return flags if flags.get(name) == value else None


async def test_a_completed_card_order_takes_back_part_of_a_line_then_another_line_and_everything_follows(stack, recorder):
    a, b = sku("RET-A"), sku("RET-B")
    await stack.set_stock({a: 5, b: 5})
    order_id = await place(stack, order_of(996_001, [line(a, 2, 1000), line(b, 1, 2000)]))
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)
    assert await stock_of(stack, [a, b]) == {a: (3, 0), b: (4, 0)}
    assert (await points_by_kind(stack, order_id))["confirmed"] == 40

    too_many = await send(stack, topics.ORDERS_COMMANDS, _return(order_id, (a, 3), restock=True))
    assert too_many["type"] == "CommandRejected"
    assert too_many["reasons"] == [f"delivery 0 sku {a}: 2 shipped and not yet returned, can't return 3"]

    first = await send(stack, topics.ORDERS_COMMANDS, _return(order_id, (a, 1), restock=True, notify=True))
    assert first["type"] == "CommandAccepted", first
    assert {k: first["details"][k] for k in ("return_no", "amount", "previous_total", "total", "balance")} == {
        "return_no": 1, "amount": 1000, "previous_total": 4550, "total": 3550, "balance": -1000,
    }
    [returned] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderReturned", order_id=order_id)
    assert [(l["sku"], l["quantity"], l["amount"]) for l in returned.json()["lines"]] == [(a, 1, 1000)]
    [refund] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAmountChanged", order_id=order_id, timeout=60)
    assert (refund.json()["outcome"], refund.json()["refunded"], refund.json()["amount"]) == ("refunded", 1000, 3550)
    [recomputed] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsRecomputed", order_id=order_id, timeout=60)
    assert (recomputed.json()["confirmed_deducted"], recomputed.json()["debt"]) == (10, 0)
    await recorder.wait_for(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id, mail_kind="order_changed", timeout=60)
    assert await eventually(lambda: _stock_is(stack, a, (4, 0)), timeout=30)

    # all of B comes back, not restocked (damaged)
    second = await send(stack, topics.ORDERS_COMMANDS, _return(order_id, (b, 1), restock=False))
    assert second["type"] == "CommandAccepted", second
    assert (second["details"]["return_no"], second["details"]["total"]) == (2, 1550)
    refunds = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAmountChanged", order_id=order_id, count=2, timeout=60)
    assert [r.json()["refunded"] for r in refunds] == [1000, 2000]
    assert [entry for entry in await ledger(stack, order_id) if entry[0] == "refund"] == [
        ("refund", "succeeded", 1000), ("refund", "succeeded", 2000),
    ]
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsRecomputed", order_id=order_id, count=2, timeout=60)
    points = await points_by_kind(stack, order_id)
    assert (points["confirmed"], points["deducted"]) == (40, 30)
    assert await stock_of(stack, [b]) == {b: (4, 0)}
    # only the parts not yet returned can come back
    again = await send(stack, topics.ORDERS_COMMANDS, _return(order_id, (a, 2), (b, 1), restock=True))
    assert again["reasons"] == [
        f"delivery 0 sku {a}: 1 shipped and not yet returned, can't return 2",
        f"delivery 0 sku {b}: 0 shipped and not yet returned, can't return 1",
    ]

    view = await eventually(lambda: _settled_view(stack, order_id), timeout=60)
    assert (view["stage"], view["total"], view["returned_total"], view["paid"]) == ("completed", 1550, 3000, 1550)
    assert view["flags"]["returns"] == "returned"
    assert [(r["return_no"], r["amount"], r["restock"]) for r in view["returns"]] == [(1, 1000, True), (2, 2000, False)]
    assert [h["details"]["amount"] for h in view["history"] if h["what"] == "returned"] == [1000, 2000]
    net = {}
    for item in view["contents"]["deliveries"][0]["lines"]:
        net[item["sku"]] = net.get(item["sku"], 0) + item["quantity"]
    assert net == {a: 1, b: 0}


async def _settled_view(stack, order_id) -> dict | None:
    view = await _view(stack, order_id)
    return view if view["paid"] == 1550 and view["flags"].get("refund") == "done" else None


async def _stock_is(stack, code: str, expected: tuple[int, int]) -> bool:
    return await stock_of(stack, [code]) == {code: expected}


async def test_a_bank_transfer_order_returned_after_shipping_owes_the_refund_and_an_unshipped_order_takes_no_return(stack, recorder):
    a = sku("RET-BT")
    await stack.set_stock({a: 5})
    order = order_of(996_002, [line(a, 2, 1000)], payment=Payment(method=PaymentMethod.BANK_TRANSFER))
    order_id = await place(stack, order)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentRequested", order_id=order_id, timeout=90)
    paid = MarkPaymentReceived(**STAFF, order_id=order_id, amount=order.charges.total, reason="paid at the bank")
    assert (await send(stack, topics.PAYMENTS_COMMANDS, paid))["type"] == "CommandAccepted"
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)

    reply = await send(stack, topics.ORDERS_COMMANDS, _return(order_id, (a, 2), restock=True))
    assert reply["type"] == "CommandAccepted", reply
    assert (reply["details"]["total"], reply["details"]["balance"]) == (550, -2000)
    [changed] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAmountChanged", order_id=order_id, timeout=60)
    assert (changed.json()["refunded"], changed.json()["amount"]) == (0, 550)
    [row] = await fetch(stack.service_dsns["payments"], "SELECT refund_owed FROM payments WHERE order_id = $1", order_id)
    assert row["refund_owed"] == 2000
    flags = await eventually(lambda: _flag(stack, order_id, "refund", "owed"), timeout=30)
    assert flags["returns"] == "returned"
    tasks = await fetch(stack.service_dsns["orders"], "SELECT kind FROM order_tasks WHERE order_id = $1 AND status = 'open'", order_id)
    assert "refund_owed" in {task["kind"] for task in tasks}
    assert await stock_of(stack, [a]) == {a: (5, 0)}

    unshipped = stalled(996_003)
    unshipped_id = await place(stack, unshipped)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=unshipped_id, timeout=90)
    refused = await send(stack, topics.ORDERS_COMMANDS, _return(unshipped_id, (unshipped.deliveries[0].lines[0].sku, 1), restock=True))
    assert refused["type"] == "CommandRejected"
    assert refused["reasons"] == ["nothing of the order has shipped yet: edit or cancel it instead"]
    assert recorder.on(topics.ORDERS_EVENTS, type="OrderReturned", order_id=unshipped_id) == []
