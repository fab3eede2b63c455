"""End to end on the real broker: deferred payment (post-pay with a credit check). Acceptance asks the sandbox provider
for a credit check (approved, rejected, or pending and then decided by the service's polling); the shipment report is
the capture; cancelling the order cancels the transaction at the provider."""

import uuid
from datetime import datetime

import httpx

from ordermesh_contracts import (
    Customer,
    OrderCancelled,
    Payment,
    PaymentMethod,
    ShipmentShipped,
    ShopOrderSubmitted,
    order_id_for,
    topics,
)
from ordermesh_devstack.demo import demo_order
from support import fetch, publish_raw


def deferred(number: int, customer_id: str) -> ShopOrderSubmitted:
    """A deferred-payment demo order for a sku the warehouse never stocked (it never ships by itself)."""
    base = demo_order(number)
    line = base.deliveries[0].lines[0].model_copy(update={"sku": f"NONE-{uuid.uuid4().hex[:8]}"})
    delivery = base.deliveries[0].model_copy(update={"lines": [line]})
    total = line.unit_price * line.quantity + base.charges.shipping_fee
    customer = Customer(**{**base.customer.model_dump(), "customer_id": f"{customer_id}-{uuid.uuid4().hex[:6]}"})
    return base.model_copy(
        update={
            "deliveries": [delivery], "charges": base.charges.model_copy(update={"total": total}), "customer": customer,
            "payment": Payment(method=PaymentMethod.DEFERRED),
        }
    )


async def submit(stack, order: ShopOrderSubmitted) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def provider_checks(stack, order_id: uuid.UUID) -> list[dict]:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"http://127.0.0.1:{stack.processes['gateway'].http_port}/v1/credit-checks", params={"order_id": str(order_id)}
        )
    return response.json()["credit_checks"]


async def ledger(stack, order_id: uuid.UUID) -> list[tuple]:
    rows = await fetch(
        stack.service_dsns["payments"],
        "SELECT operation, status, amount, reference FROM gateway_calls WHERE order_id = $1 ORDER BY requested_at", order_id,
    )
    return [tuple(row) for row in rows]


def payments_dead_letters(recorder) -> list:
    return recorder.dead_letters_since_test_start("payments")


async def test_an_approved_deferred_order_is_captured_by_its_shipment_report(stack, recorder):
    order = deferred(971_001, "C-deferred")
    order_id = await submit(stack, order)
    [approved] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="CreditCheckApproved", order_id=order_id, timeout=90)
    assert (approved.json()["amount"], approved.json()["currency"]) == (order.charges.total, "JPY")

    shipment = ShipmentShipped(
        order_id=order_id, shop_id=order.shop_id, shipment_id=uuid.uuid4(), delivery_index=0, carrier="yamato",
        tracking_number="4829-1734-6502", shipped_at=approved.json()["occurred_at"], lines=[], all_shipped=True,
    )
    await publish_raw(stack.bootstrap, topics.SHIPPING_EVENTS, shipment.model_dump_json().encode(), str(order_id).encode())
    [captured] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCaptured", order_id=order_id, timeout=60)

    [check] = await provider_checks(stack, order_id)
    assert (captured.json()["capture_id"], captured.json()["amount"], captured.json()["causation_id"]) == (
        check["capture_id"], order.charges.total, str(shipment.event_id)
    )
    assert (check["status"], check["carrier"], check["tracking_number"]) == ("captured", "yamato", "4829-1734-6502")
    assert await ledger(stack, order_id) == [
        ("credit_check", "succeeded", order.charges.total, check["check_id"]),
        ("capture", "succeeded", order.charges.total, check["capture_id"]),
    ]
    [payment] = await fetch(stack.service_dsns["payments"], "SELECT status, captured_amount FROM payments WHERE order_id = $1", order_id)
    assert (payment["status"], payment["captured_amount"]) == ("captured", order.charges.total)
    assert payments_dead_letters(recorder) == []


async def test_a_rejected_credit_check_is_published_with_the_providers_reason(stack, recorder):
    order = deferred(971_002, "credit-reject")
    order_id = await submit(stack, order)
    [rejected] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="CreditCheckRejected", order_id=order_id, timeout=90)
    [check] = await provider_checks(stack, order_id)
    assert (rejected.json()["check_id"], rejected.json()["reason"]) == (check["check_id"], "credit_limit_exceeded")
    [payment] = await fetch(stack.service_dsns["payments"], "SELECT status FROM payments WHERE order_id = $1", order_id)
    assert payment["status"] == "credit_rejected"
    assert recorder.on(topics.PAYMENTS_EVENTS, type="CreditCheckApproved", order_id=order_id) == []


async def test_a_pending_credit_check_is_polled_until_approved_and_published_once(stack, recorder):
    order = deferred(971_003, "credit-pending")
    order_id = await submit(stack, order)
    [pending] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="CreditCheckPending", order_id=order_id, timeout=90)
    [approved] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="CreditCheckApproved", order_id=order_id, timeout=60)
    waited = datetime.fromisoformat(approved.json()["occurred_at"]) - datetime.fromisoformat(pending.json()["occurred_at"])
    print(f"\nCreditCheckPending → CreditCheckApproved by polling in {waited.total_seconds():.2f} s")
    assert approved.json()["check_id"] == pending.json()["check_id"]
    assert approved.json()["causation_id"] == pending.json()["causation_id"]

    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=order_id)
    [check] = await fetch(
        stack.service_dsns["payments"], "SELECT status, decided_at FROM credit_checks WHERE order_id = $1", order_id
    )
    assert check["status"] == "approved" and check["decided_at"] is not None
    assert len(recorder.on(topics.PAYMENTS_EVENTS, type="CreditCheckApproved", order_id=order_id)) == 1
    async with httpx.AsyncClient() as client:
        view = (
            await client.get(
                f"http://127.0.0.1:{stack.processes['payments'].http_port}/api/payments/order",
                params={"order_id": str(order_id)}, headers={"Authorization": f"Bearer {stack.api_token}"},
            )
        ).json()
    assert view["after_edits"]["credit_check"] == "approved"
    assert [c["status"] for c in view["credit_checks"]] == ["approved"] and "card_token" not in view["payment"]


async def test_cancelling_a_deferred_order_cancels_the_transaction_at_the_provider(stack, recorder):
    order = deferred(971_004, "C-deferred")
    order_id = await submit(stack, order)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="CreditCheckApproved", order_id=order_id, timeout=90)
    cancel = OrderCancelled(
        order_id=order_id, shop_id=order.shop_id, external_order_no=order.external_order_no,
        customer_id=order.customer.customer_id, reason="customer asked by phone", restore_stock=True,
        cancel_payment=True, notify_customer=False, cancelled_by="e2e",
    )
    await publish_raw(stack.bootstrap, topics.ORDERS_EVENTS, cancel.model_dump_json().encode(), str(order_id).encode())
    [answer] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCancelled", order_id=order_id, timeout=60)

    assert (answer.json()["outcome"], answer.json()["amount"], answer.json()["causation_id"]) == (
        "voided", order.charges.total, str(cancel.event_id)
    )
    [check] = await provider_checks(stack, order_id)
    assert check["status"] == "cancelled"
    assert [row[:2] for row in await ledger(stack, order_id)] == [("credit_check", "succeeded"), ("cancel_credit", "succeeded")]
    assert payments_dead_letters(recorder) == []
