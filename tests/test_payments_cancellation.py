"""End to end on the real broker: payments answers OrderCancelled (void at the gateway, or silence when the payment is
kept) and never charges a cancelled order afterwards (a late prepaid payment is an over-payment, not a settlement)."""

import asyncio
import json
import time
import uuid

import httpx

from ordermesh_contracts import OrderCancelled, Payment, PaymentMethod, ShopOrderSubmitted, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_servicekit.signing import sign
from support import eventually, fetch, publish_raw


def stalled(number: int, **changes) -> ShopOrderSubmitted:
    """A demo order for a sku the warehouse never stocked: it waits for allocation and never ships."""
    base = demo_order(number).model_copy(update=changes)
    line = base.deliveries[0].lines[0].model_copy(update={"sku": f"NONE-{uuid.uuid4().hex[:8]}"})
    delivery = base.deliveries[0].model_copy(update={"lines": [line]})
    total = line.unit_price * line.quantity + base.charges.shipping_fee
    return base.model_copy(update={"deliveries": [delivery], "charges": base.charges.model_copy(update={"total": total})})


async def submit(stack, order: ShopOrderSubmitted) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def cancel(stack, order: ShopOrderSubmitted, order_id: uuid.UUID, *, cancel_payment: bool) -> OrderCancelled:
    message = OrderCancelled(
        order_id=order_id, shop_id=order.shop_id, external_order_no=order.external_order_no,
        customer_id=order.customer.customer_id, reason="customer asked by phone", restore_stock=True,
        cancel_payment=cancel_payment, notify_customer=False, cancelled_by="e2e",
    )
    await publish_raw(stack.bootstrap, topics.ORDERS_EVENTS, message.model_dump_json().encode(), str(order_id).encode())
    return message


async def stage_is(stack, order_id: uuid.UUID, stage: str) -> bool:
    rows = await fetch(stack.service_dsns["orders"], "SELECT stage FROM orders WHERE order_id = $1", order_id)
    return bool(rows) and rows[0]["stage"] == stage


async def gateway_authorizations(stack, order_id: uuid.UUID) -> list[dict]:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"http://127.0.0.1:{stack.processes['gateway'].http_port}/v1/authorizations", params={"order_id": str(order_id)}
        )
    return response.json()["authorizations"]


def payments_dead_letters(recorder) -> list:
    return recorder.dead_letters_since_test_start("payments")


async def test_cancelling_an_authorized_card_order_voids_it_at_the_gateway_and_answers_payment_cancelled(stack, recorder):
    order = stalled(970_001)
    order_id = await submit(stack, order)
    [authorized] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id, timeout=90)
    await eventually(lambda: stage_is(stack, order_id, "awaiting_allocation"), timeout=60)

    started = time.monotonic()
    cancelled = await cancel(stack, order, order_id, cancel_payment=True)
    [answer] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCancelled", order_id=order_id, timeout=60)
    print(f"\nOrderCancelled → PaymentCancelled(voided) in {time.monotonic() - started:.2f} s")

    body = answer.json()
    assert (body["outcome"], body["amount"], body["currency"], body["causation_id"]) == (
        "voided", order.charges.total, "JPY", str(cancelled.event_id)
    )
    assert answer.key == str(order_id).encode()
    [payment] = await fetch(stack.service_dsns["payments"], "SELECT * FROM payments WHERE order_id = $1", order_id)
    assert (payment["status"], payment["captured_amount"]) == ("voided", 0) and payment["cancelled_at"] is not None
    calls = await fetch(
        stack.service_dsns["payments"], "SELECT operation, status, amount FROM gateway_calls WHERE order_id = $1 ORDER BY requested_at", order_id
    )
    assert [tuple(c) for c in calls] == [("authorize", "succeeded", order.charges.total), ("void", "succeeded", order.charges.total)]
    [at_gateway] = await gateway_authorizations(stack, order_id)
    assert (at_gateway["authorization_id"], at_gateway["status"], at_gateway["captured"]) == (
        authorized.json()["authorization_id"], "voided", 0
    )
    assert recorder.on(topics.PAYMENTS_EVENTS, type="PaymentCancellationFailed", order_id=order_id) == []
    assert payments_dead_letters(recorder) == []


async def test_a_prepaid_order_cancelled_without_cancelling_the_payment_says_nothing_and_a_late_payment_is_owed_back(stack, recorder):
    order = stalled(970_002, payment=Payment(method=PaymentMethod.BANK_TRANSFER))
    order_id = await submit(stack, order)
    [requested] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentRequested", order_id=order_id, timeout=90)
    await eventually(lambda: stage_is(stack, order_id, "awaiting_payment"), timeout=60)

    await cancel(stack, order, order_id, cancel_payment=False)
    await eventually(
        lambda: fetch(stack.service_dsns["payments"], "SELECT outcome FROM cancellations WHERE order_id = $1 AND outcome = 'not_asked'", order_id),
        timeout=60,
    )
    body = json.dumps(
        {"event_id": f"evt_{uuid.uuid4().hex}", "reference": requested.json()["reference"], "amount": order.charges.total,
         "currency": "JPY", "paid_at": "2025-03-14T03:00:00+00:00"}
    ).encode()
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"http://127.0.0.1:{stack.processes['payments'].http_port}/callbacks/payments", content=body,
            headers={"X-Ordermesh-Signature": sign(stack.payment_callback_secret, body, int(time.time()))},
        )
    assert response.status_code == 202

    [received] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentReceived", order_id=order_id, timeout=60)
    assert (received.json()["balance"], received.json()["received_total"]) == (-order.charges.total, order.charges.total)
    await asyncio.sleep(1)
    types = [m.json()["type"] for m in recorder.on(topics.PAYMENTS_EVENTS, order_id=order_id)]
    assert types == ["PaymentRequested", "PaymentReceived"]
    [payment] = await fetch(stack.service_dsns["payments"], "SELECT status, received_amount FROM payments WHERE order_id = $1", order_id)
    assert (payment["status"], payment["received_amount"]) == ("awaiting_payment", order.charges.total)
    async with httpx.AsyncClient() as client:
        view = (
            await client.get(
                f"http://127.0.0.1:{stack.processes['payments'].http_port}/api/payments/order",
                params={"order_id": str(order_id)}, headers={"Authorization": f"Bearer {stack.api_token}"},
            )
        ).json()
    assert view["summary"]["balance"] == -order.charges.total
    assert (view["cancellation"]["cancel_payment"], view["cancellation"]["outcome"]) == (False, "not_asked")
    assert payments_dead_letters(recorder) == []
