"""End to end on the real broker: shipping honours OrderCancelled — a warehouse request cancelled and its stock
released, a waiting order that keeps its stock but is never topped up again, and a shipment that had already
shipped answered with ShipmentCancelFailed. OrderCancelled is published here, built from the contract."""

import uuid

import pytest

from ordermesh_contracts import ImportStock, OrderCancelled, StockLevel, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from support import eventually, fetch, publish_raw
from test_shipping_stock_consistency import stock_disagreements

STAFF = {"shop_id": "demo-shop", "issued_by": "e2e"}


@pytest.fixture(autouse=True)
async def stock_agrees_after_each_test(stack):
    yield
    assert await stock_disagreements(stack) == []


def with_sku(number: int, sku: str, quantity: int, *, carrier: str = "yamato"):
    base = demo_order(number)
    line = base.deliveries[0].lines[0].model_copy(update={"sku": sku, "quantity": quantity})
    delivery = base.deliveries[0].model_copy(update={"lines": [line], "carrier": carrier})
    total = line.unit_price * quantity + base.charges.shipping_fee
    return base.model_copy(update={"deliveries": [delivery], "charges": base.charges.model_copy(update={"total": total})})


async def submit(stack, order) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def cancel(stack, order, order_id, *, restore_stock: bool) -> OrderCancelled:
    cancelled = OrderCancelled(
        order_id=order_id, shop_id=order.shop_id, external_order_no=order.external_order_no,
        customer_id=order.customer.customer_id, reason="customer cancelled by phone", restore_stock=restore_stock,
        cancel_payment=False, notify_customer=False, cancelled_by="e2e", correlation_id=uuid.uuid4(),
    )
    await publish_raw(stack.bootstrap, topics.ORDERS_EVENTS, cancelled.model_dump_json().encode(), str(order_id).encode())
    return cancelled


async def import_stock(stack, recorder, sku: str, on_hand: int) -> dict:
    command = ImportStock(**STAFF, lines=[StockLevel(sku=sku, on_hand=on_hand)], allow_new_skus=True)
    await publish_raw(stack.bootstrap, topics.SHIPPING_COMMANDS, command.model_dump_json().encode(), command.kafka_key().encode())
    [reply] = await recorder.wait_for(topics.OPS_REPLIES, command_id=command.event_id, timeout=60)
    return reply.json()


async def stock_row(stack, sku: str) -> tuple[int, int]:
    [row] = await fetch(stack.service_dsns["shipping"], "SELECT on_hand, allocated FROM stock WHERE sku = $1 AND warehouse = 'main'", sku)
    return row["on_hand"], row["allocated"]


async def shipments(stack, order_id) -> list:
    return await fetch(stack.service_dsns["shipping"], "SELECT * FROM shipments WHERE order_id = $1 ORDER BY delivery_index", order_id)


async def test_a_requested_shipment_is_cancelled_at_the_warehouse_and_its_stock_released(stack, recorder):
    sku = f"CXL-{uuid.uuid4().hex[:8]}"
    assert (await import_stock(stack, recorder, sku, 10))["type"] == "CommandAccepted"
    # B2 shipments are packed but never reported shipped by the warehouse: the request stays cancellable.
    order = with_sku(970_001, sku, 2, carrier="yamato_b2")
    order_id = await submit(stack, order)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=order_id, timeout=90)
    await eventually(lambda: _stage_is(stack, order_id, "shipping"))
    assert await stock_row(stack, sku) == (10, 2)

    cancelled = await cancel(stack, order, order_id, restore_stock=True)
    [answer] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="OrderShippingCancelled", order_id=order_id, timeout=60)
    body = answer.json()
    assert (body["shipments_cancelled"], body["stock_released"], body["released"]) == (1, True, [{"sku": sku, "quantity": 2}])
    assert body["causation_id"] == str(cancelled.event_id)
    [row] = await shipments(stack, order_id)
    assert (row["status"], row["cancel_error"]) == ("cancelled", None)
    assert await stock_row(stack, sku) == (10, 0)
    assert recorder.on(topics.SHIPPING_EVENTS, type="ShipmentCancelFailed", order_id=order_id) == []


async def test_a_waiting_order_cancelled_without_restoring_stock_keeps_it_and_is_never_topped_up(stack, recorder):
    sku = f"CXW-{uuid.uuid4().hex[:8]}"
    assert (await import_stock(stack, recorder, sku, 1))["type"] == "CommandAccepted"
    order = with_sku(970_002, sku, 3)
    order_id = await submit(stack, order)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=order_id, allocation="partial", timeout=90)
    await eventually(lambda: _stage_is(stack, order_id, "awaiting_allocation"))

    await cancel(stack, order, order_id, restore_stock=False)
    [answer] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="OrderShippingCancelled", order_id=order_id, timeout=60)
    assert (answer.json()["shipments_cancelled"], answer.json()["stock_released"]) == (0, False)
    assert await stock_row(stack, sku) == (1, 1)

    reply = await import_stock(stack, recorder, sku, 10)
    assert reply["type"] == "CommandAccepted" and reply["details"]["allocated_orders"] == []
    assert await stock_row(stack, sku) == (10, 1)
    assert len(recorder.on(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=order_id)) == 1
    assert await shipments(stack, order_id) == []


async def test_a_shipment_that_shipped_before_the_cancel_arrived_is_answered_with_shipment_cancel_failed(stack, recorder):
    sku = f"CXS-{uuid.uuid4().hex[:8]}"
    assert (await import_stock(stack, recorder, sku, 10))["type"] == "CommandAccepted"
    order = with_sku(970_003, sku, 2)
    order_id = await submit(stack, order)
    [shipped] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id, timeout=90)

    await cancel(stack, order, order_id, restore_stock=True)
    [failed] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentCancelFailed", order_id=order_id, timeout=60)
    body = failed.json()
    # The sandbox warehouse may deliver the parcel before the cancel arrives; both answers refuse the cancel.
    assert body["shipment_id"] == shipped.json()["shipment_id"]
    assert body["reason"] in ("shipment already shipped", "shipment already delivered")
    assert recorder.on(topics.SHIPPING_EVENTS, type="OrderShippingCancelled", order_id=order_id) == []
    [row] = await shipments(stack, order_id)
    assert row["status"] in ("shipped", "delivered") and row["cancel_error"] == body["reason"]
    assert await stock_row(stack, sku) == (8, 0)


async def _stage_is(stack, order_id, expected: str) -> bool:
    rows = await fetch(stack.service_dsns["orders"], "SELECT stage FROM orders WHERE order_id = $1", order_id)
    return bool(rows) and rows[0]["stage"] == expected
