"""End to end on the real broker (issue 6 §4/§6, partial shipments): a delivery group the sandbox warehouse ships in
two parcels (a `PARTIAL-` sku) is announced once per parcel with what it carries; the order goes partly shipped →
shipped → completed, each parcel's tracking number reaches the shop, stock leaves once per unit, payments captures
the total once, a repeated parcel report changes nothing and one carrying more than is unshipped is dead-lettered."""

import json
import uuid
from datetime import datetime, timezone

import pytest

from ordermesh_contracts import ImportStock, ShippedLine, StockLevel, WarehouseShipmentReported, order_id_for, topics
from ordermesh_devstack.demo import DEMO_SHOP, demo_order
from ordermesh_devstack.sandboxes.warehouse import tracking_number
from support import eventually, fetch, publish_raw
from test_shipping_stock_consistency import stock_disagreements

STAFF = {"shop_id": DEMO_SHOP, "issued_by": "e2e"}
DLQ = topics.SHIPPING_CALLBACKS + ".dlq"


@pytest.fixture(autouse=True)
async def stock_agrees_after_each_test(stack):
    yield
    assert await stock_disagreements(stack) == []


def order_of(number: int, lines: list[tuple[str, int]]):
    base = demo_order(number)
    template = base.deliveries[0].lines[0]
    new_lines = [template.model_copy(update={"sku": sku, "quantity": qty, "name": f"商品 {sku}"}) for sku, qty in lines]
    total = sum(line.unit_price * line.quantity for line in new_lines) + base.charges.shipping_fee
    return base.model_copy(update={
        "deliveries": [base.deliveries[0].model_copy(update={"lines": new_lines})],
        "charges": base.charges.model_copy(update={"total": total}),
    })


async def import_stock(stack, recorder, levels: dict[str, int]) -> None:
    command = ImportStock(**STAFF, lines=[StockLevel(sku=s, on_hand=n) for s, n in levels.items()], allow_new_skus=True)
    await publish_raw(stack.bootstrap, topics.SHIPPING_COMMANDS, command.model_dump_json().encode(), command.kafka_key().encode())
    [reply] = await recorder.wait_for(topics.OPS_REPLIES, command_id=command.event_id, timeout=60)
    assert reply.json()["type"] == "CommandAccepted", reply.json()


async def stock_row(stack, sku: str) -> tuple[int, int]:
    [row] = await fetch(stack.service_dsns["shipping"], "SELECT on_hand, allocated FROM stock WHERE sku = $1 AND warehouse = 'main'", sku)
    return row["on_hand"], row["allocated"]


def lines_of(event) -> dict[str, int]:
    return {line["sku"]: line["quantity"] for line in event["lines"]}


async def test_a_delivery_in_two_parcels_is_shipped_partly_then_fully_and_the_order_completes_with_one_capture(stack, recorder):
    partial, plain = f"PARTIAL-{uuid.uuid4().hex[:8]}", f"PLAIN-{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, {partial: 10, plain: 5})
    order = order_of(997_001, [(partial, 3), (plain, 1)])
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())

    shipped = [m.json() for m in await recorder.wait_for(topics.SHIPPING_EVENTS, count=2, type="ShipmentShipped", order_id=order_id, timeout=120)]
    shipment_id = shipped[0]["shipment_id"]
    first, second = tracking_number(shipment_id, 1), tracking_number(shipment_id, 2)
    assert [(e["tracking_number"], lines_of(e), e["all_shipped"]) for e in shipped] == [
        (first, {partial: 2, plain: 1}, False),
        (second, {partial: 1}, True),
    ]
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)

    stages = [m.json()["to_stage"] for m in recorder.on(topics.ORDERS_EVENTS, type="OrderProgressed", order_id=order_id)]
    assert stages == ["awaiting_payment", "awaiting_allocation", "ready_to_ship", "shipping", "shipped", "completed"]
    history = await fetch(
        stack.service_dsns["orders"], "SELECT details FROM order_history WHERE order_id = $1 AND what = 'ShipmentShipped' ORDER BY id",
        order_id,
    )
    assert [json.loads(row["details"])["flags"]["shipping"] for row in history] == ["partly_shipped", "shipped"]
    updates = await recorder.wait_for(topics.SHOP_UPDATES, count=2, type="ShopOrderShipped", order_id=order_id, timeout=60)
    assert [m.json()["tracking_number"] for m in updates] == [first, second]
    units = await fetch(
        stack.service_dsns["orders"],
        "SELECT tracking_number, sku, quantity FROM order_shipped_units WHERE order_id = $1", order_id
    )
    assert sorted((r["tracking_number"], r["sku"], r["quantity"]) for r in units) == sorted(
        [(first, partial, 2), (first, plain, 1), (second, partial, 1)]
    )

    assert (await stock_row(stack, partial), await stock_row(stack, plain)) == ((7, 0), (4, 0))
    [payment] = await fetch(stack.service_dsns["payments"], "SELECT status, captured_amount FROM payments WHERE order_id = $1", order_id)
    assert (payment["status"], payment["captured_amount"]) == ("captured", order.charges.total)
    captures = await fetch(
        stack.service_dsns["payments"], "SELECT status FROM gateway_calls WHERE order_id = $1 AND operation = 'capture'", order_id
    )
    assert [c["status"] for c in captures] == ["succeeded"]
    parcels = await fetch(
        stack.service_dsns["shipping"],
        "SELECT p.tracking_number, l.sku, l.quantity FROM parcels p JOIN parcel_lines l USING (shipment_id, tracking_number) "
        "WHERE p.order_id = $1",
        order_id,
    )
    assert sorted((r["tracking_number"], r["sku"], r["quantity"]) for r in parcels) == sorted(
        [(first, partial, 2), (first, plain, 1), (second, partial, 1)]
    )
    [row] = await fetch(stack.service_dsns["shipping"], "SELECT status, tracking_number FROM shipments WHERE order_id = $1", order_id)
    assert row["status"] in ("shipped", "delivered") and row["tracking_number"] == first


async def test_a_repeated_parcel_changes_nothing_and_one_carrying_more_than_is_unshipped_is_dead_lettered(stack, recorder):
    partial = f"PARTIAL-{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, {partial: 10})
    order = order_of(997_002, [(partial, 2)])
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    shipped = await recorder.wait_for(topics.SHIPPING_EVENTS, count=2, type="ShipmentShipped", order_id=order_id, timeout=120)
    shipment_id = uuid.UUID(shipped[0].json()["shipment_id"])
    assert await stock_row(stack, partial) == (8, 0)

    def report(number: str, units: int) -> WarehouseShipmentReported:
        return WarehouseShipmentReported(
            shipment_id=shipment_id, order_id=order_id, warehouse_request_id="wr_e2e", carrier="yamato",
            tracking_number=number, shipped_at=datetime.now(timezone.utc), lines=[ShippedLine(sku=partial, quantity=units)],
        )

    repeat, extra = report(tracking_number(str(shipment_id), 2), 1), report(tracking_number(str(shipment_id), 3), 1)
    for message in (repeat, extra):
        await publish_raw(stack.bootstrap, topics.SHIPPING_CALLBACKS, message.model_dump_json().encode(), message.kafka_key().encode())

    def letters():
        return [m for m in recorder.on(DLQ, **{"dlq.error_class": "PermanentError"}) if str(extra.event_id).encode() in m.value]

    [letter] = await eventually(letters, timeout=60)
    assert b"more than the shipment has unshipped" in letter.headers["dlq.error_message"]
    assert not [m for m in recorder.on(DLQ) if str(repeat.event_id).encode() in m.value]
    parcels = await fetch(stack.service_dsns["shipping"], "SELECT tracking_number FROM parcels WHERE order_id = $1", order_id)
    assert sorted(r["tracking_number"] for r in parcels) == sorted([tracking_number(str(shipment_id), 1), repeat.tracking_number])
    assert len(recorder.on(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id)) == 2
    assert await stock_row(stack, partial) == (8, 0)
