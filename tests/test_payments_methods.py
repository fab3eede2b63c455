"""End to end on the real broker: card failures, gateway outage, duplicate deliveries, signed prepaid callbacks."""

import asyncio
import json
import time
import uuid

import httpx

from ordermesh_contracts import Payment, PaymentMethod, ShopOrderSubmitted, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_servicekit.signing import sign
from support import fetch, publish_raw


async def submit(stack, order: ShopOrderSubmitted) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def sandbox_authorizations(stack, order_id) -> list[dict]:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"http://127.0.0.1:{stack.processes['gateway'].http_port}/v1/authorizations", params={"order_id": str(order_id)}
        )
    return response.json()["authorizations"]


def dead_letters(recorder) -> list:
    return recorder.dead_letters_since_test_start("payments")


async def post_callback(stack, body: bytes, signature: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"http://127.0.0.1:{stack.processes['payments'].http_port}/callbacks/payments",
            content=body,
            headers={"X-Ordermesh-Signature": signature, "Content-Type": "application/json"},
        )


async def test_a_declined_card_leaves_the_order_awaiting_payment_with_the_reason(stack, recorder):
    order_id = await submit(stack, demo_order(950_001, card_token="tok_decline"))
    [failed] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorizationFailed", order_id=order_id)
    assert failed.json()["reason"] == "card_declined"
    await asyncio.sleep(1)
    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage FROM orders WHERE order_id = $1", order_id)
    assert row["stage"] == "awaiting_payment"
    assert await sandbox_authorizations(stack, order_id) == []


async def test_a_gateway_down_for_a_while_delays_the_order_and_loses_nothing(stack, recorder):
    gateway = stack.processes["gateway"]
    gateway.stop()
    try:
        order_id = await submit(stack, demo_order(950_002))
        await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=order_id)
        await asyncio.sleep(5)
        assert recorder.on(topics.PAYMENTS_EVENTS, order_id=order_id) == []
    finally:
        gateway.start()
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id, timeout=60)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCaptured", order_id=order_id, timeout=90)
    [authorization] = await sandbox_authorizations(stack, order_id)
    assert authorization["status"] == "captured"
    assert dead_letters(recorder) == []


async def test_duplicate_order_accepted_deliveries_authorize_and_capture_once(stack, recorder):
    order_id = await submit(stack, demo_order(950_003))
    [accepted] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=order_id)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id)
    redelivered = accepted.json()
    again_with_new_id = {**redelivered, "event_id": str(uuid.uuid4())}
    for body in (redelivered, again_with_new_id):
        await publish_raw(stack.bootstrap, topics.ORDERS_EVENTS, json.dumps(body).encode(), accepted.key)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCaptured", order_id=order_id, timeout=90)
    await asyncio.sleep(2)
    [authorization] = await sandbox_authorizations(stack, order_id)
    assert (authorization["status"], authorization["captured"]) == ("captured", authorization["amount"])
    assert len(recorder.on(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id)) == 1
    assert len(recorder.on(topics.PAYMENTS_EVENTS, type="PaymentCaptured", order_id=order_id)) == 1
    calls = await fetch(stack.service_dsns["payments"], "SELECT operation FROM gateway_calls WHERE order_id = $1", order_id)
    assert sorted(c["operation"] for c in calls) == ["authorize", "capture"]


async def test_a_prepaid_order_gets_instructions_and_a_signed_callback_pays_it_exactly_once(stack, recorder):
    order = demo_order(950_004).model_copy(update={"payment": Payment(method=PaymentMethod.BANK_TRANSFER)})
    order_id = await submit(stack, order)
    [requested] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentRequested", order_id=order_id)
    instructions = requested.json()
    assert (instructions["amount"], instructions["method"]) == (order.charges.total, "bank_transfer")

    def callback(event_id: str, amount: int, timestamp: int | None = None, secret: str | None = None) -> tuple[bytes, str]:
        body = json.dumps(
            {"event_id": event_id, "reference": instructions["reference"], "amount": amount, "currency": "JPY",
             "paid_at": "2025-03-14T03:00:00+00:00"}
        ).encode()
        return body, sign(secret or stack.payment_callback_secret, body, timestamp or int(time.time()))

    forged = await post_callback(stack, *callback("evt_forged", order.charges.total, secret="not-the-secret"))
    stale = await post_callback(stack, *callback("evt_stale", order.charges.total, timestamp=int(time.time()) - 301))
    body, signature = callback("evt_paid", order.charges.total)
    malformed_body = b'{"event_id": "evt_malformed"'
    malformed = await post_callback(stack, malformed_body, sign(stack.payment_callback_secret, malformed_body, int(time.time())))
    unknown_body = json.dumps({"event_id": "evt_unknown", "reference": "OM-000000000000", "amount": 1, "currency": "JPY",
                               "paid_at": "2025-03-14T03:00:00+00:00"}).encode()
    unknown = await post_callback(stack, unknown_body, sign(stack.payment_callback_secret, unknown_body, int(time.time())))
    assert [forged.status_code, stale.status_code, malformed.status_code, unknown.status_code] == [401, 401, 400, 404]
    [payment] = await fetch(stack.service_dsns["payments"], "SELECT status, received_amount FROM payments WHERE order_id = $1", order_id)
    assert (payment["status"], payment["received_amount"]) == ("awaiting_payment", 0)

    paid = await post_callback(stack, body, signature)
    replayed = await post_callback(stack, body, signature)
    assert (paid.status_code, replayed.status_code) == (202, 409)
    [received] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentReceived", order_id=order_id)
    assert (received.json()["balance"], received.json()["source"]) == (0, "provider_callback")
    await asyncio.sleep(1)
    assert len(recorder.on(topics.PAYMENTS_EVENTS, type="PaymentReceived", order_id=order_id)) == 1
    [payment] = await fetch(stack.service_dsns["payments"], "SELECT status, received_amount FROM payments WHERE order_id = $1", order_id)
    assert (payment["status"], payment["received_amount"]) == ("paid", order.charges.total)
    assert dead_letters(recorder) == []
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    [row] = await fetch(stack.service_dsns["orders"], "SELECT flags FROM orders WHERE order_id = $1", order_id)
    assert json.loads(row["flags"])["prepaid_payment"] == "received"


async def test_staff_refunds_are_limited_to_what_was_captured_and_a_captured_payment_cannot_be_voided(stack, recorder):
    from ordermesh_contracts import RefundPayment, VoidPayment
    from ordermesh_ops.client import Connection, send_command

    order = demo_order(950_005)
    order_id = await submit(stack, order)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCaptured", order_id=order_id, timeout=90)
    connection = Connection(stack.bootstrap, {}, stack.api_token)
    staff = dict(shop_id=order.shop_id, issued_by="test", order_id=order_id)

    too_much = await send_command(connection, topics.PAYMENTS_COMMANDS, RefundPayment(**staff, reason="test", amount=order.charges.total + 1))
    void = await send_command(connection, topics.PAYMENTS_COMMANDS, VoidPayment(**staff, reason="test"))
    partial = await send_command(connection, topics.PAYMENTS_COMMANDS, RefundPayment(**staff, reason="damaged", amount=100))

    assert too_much["type"] == "CommandRejected"
    assert too_much["reasons"] == [f"refund of {order.charges.total + 1} is more than the {order.charges.total} captured and not yet refunded"]
    assert void["type"] == "CommandRejected" and "refund instead" in void["reasons"][0]
    assert partial["type"] == "CommandAccepted" and partial["results"][0]["ok"] is True
    [refunded] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentRefunded", order_id=order_id)
    assert (refunded.json()["amount"], refunded.json()["refunded_total"]) == (100, 100)
    [authorization] = await sandbox_authorizations(stack, order_id)
    assert authorization["refunded"] == 100

    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"http://127.0.0.1:{stack.processes['payments'].http_port}/api/payments/order",
            params={"order_id": str(order_id)}, headers={"Authorization": f"Bearer {stack.api_token}"},
        )
    view = response.json()
    assert view["summary"] == {"authorized": order.charges.total, "captured": order.charges.total, "refunded": 100,
                               "received": 0, "balance": 0}
    assert [(c["operation"], c["status"]) for c in view["ledger"]] == [
        ("authorize", "succeeded"), ("capture", "succeeded"), ("refund", "succeeded")
    ]
