"""The shipping read side on the running suite (issue 6, item 8): stock levels, allocations and shipments with state
and tracking, through the staff CLI and the JSON endpoints, which refuse calls without the staff token."""

import json
import uuid

import httpx
import pytest

from ordermesh_contracts import ImportStock, StockLevel, order_id_for, topics
from ordermesh_devstack.demo import DEMO_SHOP, demo_order
from support import publish_raw
from test_shipping_stock_consistency import stock_disagreements
from ops_cli import cli


@pytest.fixture(autouse=True)
async def stock_agrees_after_each_test(stack):
    yield
    assert await stock_disagreements(stack) == []


def order_of(number: int, sku: str):
    base = demo_order(number)
    line = base.deliveries[0].lines[0].model_copy(update={"sku": sku, "quantity": 2})
    return base.model_copy(update={
        "deliveries": [base.deliveries[0].model_copy(update={"lines": [line]})],
        "charges": base.charges.model_copy(update={"total": line.unit_price * 2 + base.charges.shipping_fee}),
    })


def cli_json(stack, *args: str):
    done = cli(stack, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_staff_read_stock_allocations_and_shipments_with_state_and_tracking(stack, recorder):
    shipped_sku, short_sku = f"RS-{uuid.uuid4().hex[:8]}", f"RS-{uuid.uuid4().hex[:8]}"
    command = ImportStock(
        shop_id=DEMO_SHOP, issued_by="e2e", allow_new_skus=True,
        lines=[StockLevel(sku=shipped_sku, on_hand=10), StockLevel(sku=short_sku, on_hand=1, cool_type="chilled")],
    )
    await publish_raw(stack.bootstrap, topics.SHIPPING_COMMANDS, command.model_dump_json().encode(), command.kafka_key().encode())
    await recorder.wait_for(topics.OPS_REPLIES, command_id=command.event_id, timeout=60)

    shipped, short = (order_of(number, sku) for number, sku in ((997_001, shipped_sku), (997_002, short_sku)))
    ids = []
    for order in (shipped, short):
        await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
        ids.append(order_id_for(order.shop_id, order.channel.value, order.external_order_no))
    shipped_id, short_id = ids
    [event] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=shipped_id, timeout=90)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentDelivered", order_id=shipped_id, timeout=60)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=short_id, timeout=90)

    assert cli_json(stack, "shipping", "stock", "--sku", short_sku) == [
        {"sku": short_sku, "warehouse": "main", "on_hand": 1, "allocated": 1, "available": 0, "cool_type": "chilled"}
    ]
    [level] = cli_json(stack, "shipping", "stock", "--sku", shipped_sku)
    assert (level["on_hand"], level["allocated"], level["available"]) == (8, 0, 8)

    [held] = cli_json(stack, "shipping", "allocations", "--order", str(short_id))
    assert (held["sku"], held["allocated"], held["released"], held["coverage"]) == (short_sku, 1, 0, "partial")
    by_sku = cli_json(stack, "shipping", "allocations", "--sku", shipped_sku)
    assert [(row["order_id"], row["allocated"], row["coverage"]) for row in by_sku] == [(str(shipped_id), 2, "full")]

    [row] = cli_json(stack, "shipping", "shipments", str(shipped_id))
    assert (row["shipment_id"], row["status"], row["carrier"]) == (event.json()["shipment_id"], "delivered", "yamato")
    assert row["tracking_number"] == event.json()["tracking_number"] and row["delivered_at"]
    assert cli_json(stack, "shipping", "shipments", str(short_id)) == []

    table = cli(stack, "shipping", "shipments", str(shipped_id))
    assert table.returncode == 0 and "shipments" in table.stdout


async def test_the_shipping_json_endpoints_refuse_calls_without_the_staff_token_and_say_what_is_wrong(stack, recorder):
    base = f"http://127.0.0.1:{stack.processes['shipping'].http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for path in ("/api/shipping/stock", "/api/shipping/allocations", f"/api/shipping/shipments?order_id={uuid.uuid4()}"):
            assert (await client.get(path)).status_code == 401
            assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status_code == 401
        staff = {"Authorization": f"Bearer {stack.api_token}"}
        bad = await client.get("/api/shipping/shipments", params={"order_id": "not-a-uuid"}, headers=staff)
        assert (bad.status_code, bad.json()) == (400, {"error": "invalid_query", "reason": "order_id must be a UUID"})
        bad = await client.get("/api/shipping/allocations", params={"order_id": "nope"}, headers=staff)
        assert bad.status_code == 400
        stock = await client.get("/api/shipping/stock", params={"sku": "SKU-001"}, headers=staff)
        assert stock.status_code == 200 and [row["sku"] for row in stock.json()] == ["SKU-001"]
