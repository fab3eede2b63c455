"""End to end on the real broker: waiting allocation served by a stock import, a delivery-date error, and the
Yamato B2 CSV round trip (export → carrier-issued labels → import → shipped with that tracking number)."""

import base64
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from ordermesh_contracts import ExportLabels, ImportStock, ImportTrackingCsv, StockLevel, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from support import fetch, publish_raw
from test_shipping_stock_consistency import stock_disagreements

STAFF = {"shop_id": "demo-shop", "issued_by": "e2e"}


@pytest.fixture(autouse=True)
async def stock_agrees_after_each_test(stack):
    yield
    assert await stock_disagreements(stack) == []


async def submit(stack, order) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def command(stack, recorder, message) -> dict:
    await publish_raw(stack.bootstrap, topics.SHIPPING_COMMANDS, message.model_dump_json().encode(), message.kafka_key().encode())
    [reply] = await recorder.wait_for(topics.OPS_REPLIES, command_id=message.event_id, timeout=60)
    return reply.json()


def with_lines(order, **changes):
    delivery = order.deliveries[0]
    return order.model_copy(update={"deliveries": [delivery.model_copy(update=changes)]})


async def stock_row(stack, sku: str):
    rows = await fetch(stack.service_dsns["shipping"], "SELECT on_hand, allocated FROM stock WHERE sku = $1 AND warehouse = 'main'", sku)
    return (rows[0]["on_hand"], rows[0]["allocated"]) if rows else None


async def test_an_order_for_a_sku_without_stock_waits_until_a_stock_import_allocates_it_and_it_completes(stack, recorder):
    sku = f"WAIT-{uuid.uuid4().hex[:8]}"
    base = demo_order(960_001)
    line = base.deliveries[0].lines[0].model_copy(update={"sku": sku})
    order = with_lines(base, lines=[line])
    order = order.model_copy(update={"charges": order.charges.model_copy(update={"total": line.unit_price * line.quantity + order.charges.shipping_fee})})
    order_id = await submit(stack, order)

    await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=order_id, allocation="none", timeout=90)
    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage FROM orders WHERE order_id = $1", order_id)
    assert row["stage"] == "awaiting_allocation"

    reply = await command(stack, recorder, ImportStock(**STAFF, lines=[StockLevel(sku=sku, on_hand=line.quantity + 4)]))
    assert reply["type"] == "CommandAccepted"
    assert reply["details"]["allocated_orders"] == [{"order_id": str(order_id), "allocation": "full"}]
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    assert await stock_row(stack, sku) == (4, 0)


async def test_a_stock_import_with_bad_lines_is_rejected_with_their_numbers_and_changes_nothing(stack, recorder):
    reply = await command(stack, recorder, ImportStock(**STAFF, csv="sku,warehouse,on_hand\nSKU-001,main,5\nNO-SUCH-SKU,main,1\nSKU-002,main,-1\n"))
    assert reply["type"] == "CommandRejected"
    assert reply["reasons"] == ["line 3: unknown sku 'NO-SUCH-SKU'", "line 4: on_hand -1 is negative"]
    assert (await stock_row(stack, "SKU-001"))[0] > 5


async def test_a_requested_delivery_date_earlier_than_possible_is_a_delivery_date_error_with_the_earliest_date(stack, recorder):
    today = datetime.now(timezone(timedelta(hours=9))).date()
    order = with_lines(demo_order(960_002), requested_date=today)
    order_id = await submit(stack, order)
    [checked] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="DeliveryDateChecked", order_id=order_id, timeout=90)
    event = checked.json()
    assert event["result"] == "error"
    assert event["earliest_delivery_date"] > today.isoformat()
    assert today.isoformat() in event["reasons"][0]


def valid_tracking_number(seed: int) -> str:
    body = 40_000_000_000 + seed % 10_000_000_000
    return f"{body:011d}{body % 7}"


async def test_b2_labels_exported_and_the_issued_labels_file_imported_ship_the_order_with_that_tracking_number(stack, recorder):
    sku = f"B2-{uuid.uuid4().hex[:8]}"
    reply = await command(stack, recorder, ImportStock(**STAFF, lines=[StockLevel(sku=sku, on_hand=10)], allow_new_skus=True))
    assert reply["type"] == "CommandAccepted"
    base = demo_order(960_003)
    line = base.deliveries[0].lines[0].model_copy(update={"sku": sku})
    order = with_lines(base, carrier="yamato_b2", lines=[line])
    order = order.model_copy(update={"charges": order.charges.model_copy(update={"total": line.unit_price * line.quantity + order.charges.shipping_fee})})
    order_id = await submit(stack, order)
    [requested] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=order_id, timeout=90)
    shipment_id = requested.json()["shipment_id"]
    assert await stock_row(stack, sku) == (10, line.quantity)

    reply = await command(stack, recorder, ExportLabels(**STAFF, shipment_ids=[uuid.UUID(shipment_id)]))
    assert reply["type"] == "CommandAccepted", reply
    text = base64.b64decode(reply["details"]["content_base64"]).decode("cp932")
    header, label, *_ = text.split("\r\n")
    label_no = label.split(",")[0]  # お客様管理番号: the shipment's short label number (B2 allows 20 characters)
    assert label.startswith(f"{label_no},0,0,,") and label_no.isdigit() and len(label_no) <= 20

    number = valid_tracking_number(uuid.UUID(shipment_id).int)
    issued = f"{header}\r\n{label.replace(f'{label_no},0,0,,', f'{label_no},0,0,{number},', 1)}\r\n"
    reply = await command(stack, recorder, ImportTrackingCsv(**STAFF, csv=issued))
    assert [r["ok"] for r in reply["results"]] == [True], reply

    [shipped] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id, timeout=60)
    assert (shipped.json()["tracking_number"], shipped.json()["all_shipped"]) == (number, True)
    [update] = await recorder.wait_for(topics.SHOP_UPDATES, type="ShopOrderShipped", order_id=order_id, timeout=60)
    assert update.json()["tracking_number"] == number
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    assert await stock_row(stack, sku) == (10 - line.quantity, 0)
