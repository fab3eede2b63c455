"""End to end on the real broker, the rest of issue 5's failure cases and "done when": a bank statement CSV that
under-pays and then over-pays a prepaid order, an expired prepaid order of a shop that cancels those, duplicate
shipment reports that capture once, a capture for more than was authorized refused with the reason, and the
sandbox's insufficient funds and gateway error as authorization failures. Each checks the payments database, the
sandbox's own record and the order's flags."""

import json
import os
import uuid

import httpx
import pytest

from ordermesh_contracts import (
    ImportBankStatement,
    Payment,
    PaymentMethod,
    RetryCapture,
    SetPaymentSettings,
    ShopOrderSubmitted,
    order_id_for,
    topics,
)
from ordermesh_devstack.demo import DEMO_SHOP, demo_order
from ordermesh_ops.client import Connection, send_command
from support import eventually, fetch, publish_raw
from ops_cli import cli


async def send(stack, topic: str, command) -> dict:
    return await send_command(Connection(stack.bootstrap, {}, stack.api_token), topic, command)


async def place(stack, order: ShopOrderSubmitted) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


def stalled(number: int, **changes) -> ShopOrderSubmitted:
    """A demo order for a sku the warehouse never stocked: it is authorized but never ships."""
    base = demo_order(number).model_copy(update=changes)
    line = base.deliveries[0].lines[0].model_copy(update={"sku": f"NONE-{uuid.uuid4().hex[:8]}"})
    delivery = base.deliveries[0].model_copy(update={"lines": [line]})
    total = line.unit_price * line.quantity + base.charges.shipping_fee
    return base.model_copy(update={"deliveries": [delivery], "charges": base.charges.model_copy(update={"total": total})})


async def sandbox_authorizations(stack, order_id) -> list[dict]:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"http://127.0.0.1:{stack.processes['gateway'].http_port}/v1/authorizations", params={"order_id": str(order_id)}
        )
    return response.json()["authorizations"]


async def payment(stack, order_id) -> dict:
    [row] = await fetch(stack.service_dsns["payments"], "SELECT * FROM payments WHERE order_id = $1", order_id)
    return dict(row)


async def ledger(stack, order_id) -> list[tuple]:
    rows = await fetch(
        stack.service_dsns["payments"],
        "SELECT operation, status, amount FROM gateway_calls WHERE order_id = $1 ORDER BY requested_at", order_id,
    )
    return [tuple(row) for row in rows]


async def order_flags(stack, order_id) -> dict:
    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage, flags FROM orders WHERE order_id = $1", order_id)
    return {"stage": row["stage"], **json.loads(row["flags"])}


async def consumed_by_payments(stack, event_id) -> bool:
    rows = await fetch(stack.service_dsns["payments"], "SELECT 1 FROM inbox WHERE message_id = $1", uuid.UUID(str(event_id)))
    return bool(rows)


def payments_dead_letters(recorder) -> list:
    return recorder.dead_letters_since_test_start("payments")


async def test_a_bank_statement_under_pays_then_over_pays_a_prepaid_order_each_line_counted_once(stack, recorder):
    order = stalled(970_001, payment=Payment(method=PaymentMethod.BANK_TRANSFER))
    total = order.charges.total
    order_id = await place(stack, order)
    [requested] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentRequested", order_id=order_id)
    reference = requested.json()["reference"]
    tx1, tx2 = f"T1-{uuid.uuid4().hex[:8]}", f"T2-{uuid.uuid4().hex[:8]}"

    first = await send(stack, topics.PAYMENTS_COMMANDS, ImportBankStatement(
        shop_id=DEMO_SHOP, issued_by="staff:e2e",
        csv_text=f"transaction_id,date,reference,amount\n{tx1},2031-04-01,{reference.lower()},{total - 1000}\n"
                 f"T-UNKNOWN-{uuid.uuid4().hex[:6]},2031-04-01,OM-000000000000,500\nbroken,line\n",
    ))
    assert first["type"] == "CommandAccepted", first
    by_item = {r["item"]: (r["ok"], r["reason"]) for r in first["results"]}
    assert by_item[tx1] == (True, "balance due 1000")
    assert [reason for ok, reason in by_item.values() if not ok and "unknown reference" in (reason or "")] == ["unknown reference OM-000000000000"]
    assert any("line 4" in (reason or "") for ok, reason in by_item.values() if not ok)
    [under] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentReceived", order_id=order_id)
    assert (under.json()["balance"], under.json()["source"], under.json()["reference"]) == (1000, "bank_statement", reference)
    assert (await eventually(lambda: _flag(stack, order_id, "prepaid_payment", "under_paid"), timeout=30))

    second = await send(stack, topics.PAYMENTS_COMMANDS, ImportBankStatement(
        shop_id=DEMO_SHOP, issued_by="staff:e2e",
        csv_text=f"transaction_id,date,reference,amount\n{tx1},2031-04-01,{reference},{total - 1000}\n{tx2},2031-04-02,{reference},1500\n",
    ))
    by_item = {r["item"]: (r["ok"], r["reason"]) for r in second["results"]}
    assert by_item == {tx1: (False, "already imported"), tx2: (True, "over-paid by 500")}
    received = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentReceived", order_id=order_id, count=2)
    assert [(r.json()["amount"], r.json()["received_total"], r.json()["balance"]) for r in received] == [
        (total - 1000, total - 1000, 1000), (1500, total + 500, -500)
    ]
    row = await payment(stack, order_id)
    assert (row["status"], row["received_amount"]) == ("paid", total + 500)
    rows = await fetch(stack.service_dsns["payments"], "SELECT source_id, amount FROM received_payments WHERE order_id = $1 ORDER BY received_at", order_id)
    assert [(r["source_id"], r["amount"]) for r in rows] == [(f"bank:{tx1}", total - 1000), (f"bank:{tx2}", 1500)]
    flags = await eventually(lambda: _flag(stack, order_id, "refund", "owed"), timeout=30)
    assert flags["prepaid_payment"] == "received"
    assert payments_dead_letters(recorder) == []


async def _flag(stack, order_id, name: str, value: str) -> dict | None:
    flags = await order_flags(stack, order_id)
    return flags if flags.get(name) == value else None


async def test_an_expired_prepaid_order_of_a_shop_that_cancels_them_is_announced_overdue_and_orders_cancels_it(stack, recorder):
    shop = f"overdue-{uuid.uuid4().hex[:6]}"
    reply = await send(stack, topics.PAYMENTS_COMMANDS, SetPaymentSettings(
        shop_id=shop, issued_by="staff:e2e", prepaid_due_days=1, cancel_overdue_prepaid=True,
    ))
    assert reply["type"] == "CommandAccepted", reply
    order = stalled(970_002, shop_id=shop, payment=Payment(method=PaymentMethod.CONVENIENCE_STORE))
    order_id = await place(stack, order)
    [requested] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentRequested", order_id=order_id)
    # Two days pass: the due date is moved back instead (the periodic check reads the clock).
    await fetch(stack.service_dsns["payments"], "UPDATE payments SET due_date = current_date - 1 WHERE order_id = $1", order_id)

    [overdue] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentOverdue", order_id=order_id, timeout=60)

    body = overdue.json()
    assert (body["cancel_order"], body["balance"], body["reference"]) == (True, order.charges.total, requested.json()["reference"])
    assert (await payment(stack, order_id))["overdue_notified"] is True
    await eventually(lambda: _flag(stack, order_id, "prepaid_payment", "overdue"), timeout=30)
    # orders cancels it as the shop asked: the request withdrawn, the customer told, the stock released
    [cancelled] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCancelled", order_id=order_id)
    assert cancelled.json()["causation_id"] == body["event_id"]
    assert (cancelled.json()["restore_stock"], cancelled.json()["cancel_payment"], cancelled.json()["notify_customer"]) == (True, True, True)
    [withdrawn] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCancelled", order_id=order_id)
    assert withdrawn.json()["outcome"] == "request_cancelled"
    await recorder.wait_for(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id, mail_kind="order_cancelled")
    await eventually(lambda: _flag(stack, order_id, "payment_cancellation", "request_cancelled"), timeout=30)


async def test_duplicate_shipment_reports_capture_once_at_the_gateway(stack, recorder):
    order_id = await place(stack, demo_order(970_003))
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCaptured", order_id=order_id, timeout=90)
    [shipped] = [m for m in recorder.on(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id) if m.json()["all_shipped"]]
    again_with_new_id = {**shipped.json(), "event_id": str(uuid.uuid4())}
    for body in (shipped.json(), again_with_new_id):
        await publish_raw(stack.bootstrap, topics.SHIPPING_EVENTS, json.dumps(body).encode(), shipped.key)
    await eventually(lambda: consumed_by_payments(stack, again_with_new_id["event_id"]), timeout=30)

    [authorization] = await sandbox_authorizations(stack, order_id)
    assert (authorization["status"], authorization["captured"]) == ("captured", authorization["amount"])
    assert len(recorder.on(topics.PAYMENTS_EVENTS, type="PaymentCaptured", order_id=order_id)) == 1
    assert [op for op, _, _ in await ledger(stack, order_id)] == ["authorize", "capture"]


async def test_a_capture_for_more_than_was_authorized_is_refused_with_the_reason_and_nothing_is_captured(stack, recorder):
    order = stalled(970_004)
    total = order.charges.total
    order_id = await place(stack, order)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id)

    reply = await send(stack, topics.PAYMENTS_COMMANDS, RetryCapture(
        shop_id=DEMO_SHOP, issued_by="staff:e2e", order_id=order_id, reason="capture by hand", amount=total + 1,
    ))

    assert reply["type"] == "CommandRejected"
    assert reply["reasons"] == [f"capture of {total + 1} is more than the {total} authorized"]
    [authorization] = await sandbox_authorizations(stack, order_id)
    assert (authorization["status"], authorization["captured"]) == ("authorized", 0)
    assert (await payment(stack, order_id))["status"] == "authorized"
    assert await ledger(stack, order_id) == [("authorize", "succeeded", total)]
    shown = cli(stack, "payments", "show", str(order_id), "--json")
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["summary"] == {"authorized": total, "captured": 0, "refunded": 0, "received": 0, "balance": total}
    assert [(c["operation"], c["status"]) for c in view["ledger"]] == [("authorize", "succeeded")]


@pytest.mark.parametrize(("token", "reason"), [("tok_insufficient_funds", "insufficient_funds"), ("tok_error", "gateway_error")])
async def test_insufficient_funds_and_a_gateway_error_fail_the_authorization_with_the_reason(stack, recorder, token, reason):
    order_id = await place(stack, demo_order(970_010 + len(token), card_token=token))

    [failed] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorizationFailed", order_id=order_id)

    assert failed.json()["reason"] == reason
    assert await ledger(stack, order_id) == [("authorize", "failed", demo_order(970_010 + len(token)).charges.total)]
    assert (await payment(stack, order_id))["status"] == "authorization_failed"
    assert all(a["status"] != "authorized" for a in await sandbox_authorizations(stack, order_id))
    flags = await eventually(lambda: _flag(stack, order_id, "card_authorization", "error"), timeout=30)
    assert flags["stage"] == "awaiting_payment"
