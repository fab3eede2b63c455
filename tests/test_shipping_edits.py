"""End to end on the real broker: shipping honours OrderEdited — a requested shipment cancelled and requested again
with the new lines and stock following (or not, as staff chose), a delivery the warehouse already picked or that
already shipped refused, and the carrier checks run again on the edited order. OrderEdited is published here, built
from the contract, as the orders service would."""

import base64
import uuid

import pytest

from ordermesh_contracts import (
    ExportLabels,
    ImportStock,
    ImportTrackingCsv,
    LineDiff,
    OrderEdited,
    StockLevel,
    order_id_for,
    topics,
)
from ordermesh_devstack.demo import demo_order
from support import eventually, fetch, publish_raw
from test_shipping_stock_consistency import stock_disagreements

STAFF = {"shop_id": "demo-shop", "issued_by": "e2e"}


@pytest.fixture(autouse=True)
async def stock_agrees_after_each_test(stack):
    yield
    assert await stock_disagreements(stack) == []
MIKURAJIMA = {"postal_code": "100-1211", "prefecture": "東京都", "city": "御蔵島村", "line1": "御蔵島1"}


def with_sku(number: int, sku: str, quantity: int, *, carrier: str = "yamato", address: dict | None = None):
    base = demo_order(number)
    line = base.deliveries[0].lines[0].model_copy(update={"sku": sku, "quantity": quantity})
    delivery = base.deliveries[0].model_copy(update={"lines": [line], "carrier": carrier})
    if address:
        delivery = delivery.model_copy(update={"address": delivery.address.model_copy(update=address)})
    total = line.unit_price * quantity + base.charges.shipping_fee
    return base.model_copy(update={"deliveries": [delivery], "charges": base.charges.model_copy(update={"total": total})})


async def submit(stack, order) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def edit(stack, order, order_id, lines, *, adjust_stock: bool = True, edit_no: int = 1) -> OrderEdited:
    """Publishes an edit setting delivery 0's lines to `lines` ((sku, quantity) pairs, net)."""
    template = order.deliveries[0].lines[0]
    before = {line.sku: line.quantity for line in order.deliveries[0].lines}
    new_lines = [template.model_copy(update={"sku": sku, "quantity": qty, "name": f"商品 {sku}"}) for sku, qty in lines]
    after = dict(lines)
    changes = [
        LineDiff(
            delivery_index=0, sku=sku, change="added" if sku not in before else "removed" if sku not in after else "changed",
            previous_quantity=before.get(sku, 0), quantity=after.get(sku, 0), unit_price=template.unit_price,
            previous_line_discount=0, line_discount=0,
        )
        for sku in sorted(set(before) | set(after))
        if before.get(sku, 0) != after.get(sku, 0)
    ]
    merchandise = sum(line.unit_price * line.quantity for line in new_lines)
    charges = order.charges.model_copy(update={"total": merchandise + order.charges.shipping_fee})
    edited = OrderEdited(
        order_id=order_id, shop_id=order.shop_id, edit_no=edit_no, external_order_no=order.external_order_no,
        customer=order.customer, currency=order.currency, payment=order.payment, changes=changes,
        deliveries=[order.deliveries[0].model_copy(update={"lines": new_lines})], previous_charges=order.charges,
        charges=charges, merchandise_total=merchandise, paid=0, balance=0, adjust_stock=adjust_stock,
        notify_customer=False, reason="customer called", edited_by="e2e", correlation_id=uuid.uuid4(),
    )
    await publish_raw(stack.bootstrap, topics.ORDERS_EVENTS, edited.model_dump_json().encode(), str(order_id).encode())
    return edited


async def command(stack, recorder, message) -> dict:
    await publish_raw(stack.bootstrap, topics.SHIPPING_COMMANDS, message.model_dump_json().encode(), message.kafka_key().encode())
    [reply] = await recorder.wait_for(topics.OPS_REPLIES, command_id=message.event_id, timeout=60)
    return reply.json()


async def import_stock(stack, recorder, sku: str, on_hand: int, cool_type: str | None = None) -> None:
    reply = await command(stack, recorder, ImportStock(**STAFF, lines=[StockLevel(sku=sku, on_hand=on_hand, cool_type=cool_type)], allow_new_skus=True))
    assert reply["type"] == "CommandAccepted", reply


async def stock_row(stack, sku: str) -> tuple[int, int]:
    [row] = await fetch(stack.service_dsns["shipping"], "SELECT on_hand, allocated FROM stock WHERE sku = $1 AND warehouse = 'main'", sku)
    return row["on_hand"], row["allocated"]


async def shipment(stack, order_id):
    [row] = await fetch(stack.service_dsns["shipping"], "SELECT * FROM shipments WHERE order_id = $1", order_id)
    return row


async def lines_of(stack, order_id) -> dict[str, int]:
    rows = await fetch(stack.service_dsns["shipping"], "SELECT sku, quantity FROM order_lines WHERE order_id = $1", order_id)
    return {row["sku"]: row["quantity"] for row in rows}


def valid_tracking_number(seed: int) -> str:
    body = 30_000_000_000 + seed % 10_000_000_000
    return f"{body:011d}{body % 7}"


async def test_a_requested_shipment_follows_a_quantity_increase_and_ships_the_new_quantity_with_stock_decremented_once(stack, recorder):
    sku = f"EDU-{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, sku, 10)
    order = with_sku(980_001, sku, 2, carrier="yamato_b2")
    order_id = await submit(stack, order)
    [requested] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=order_id, timeout=90)
    old_request = requested.json()["warehouse_request_id"]
    assert await stock_row(stack, sku) == (10, 2)

    edited = await edit(stack, order, order_id, [(sku, 3)])
    [applied] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShippingEditApplied", order_id=order_id, timeout=60)
    body = applied.json()
    assert (body["edit_no"], body["stock_adjusted"], body["allocation"], body["shipments_reissued"]) == (1, True, "full", 1)
    assert (body["allocated"], body["released"], body["causation_id"]) == ([{"sku": sku, "quantity": 1}], [], str(edited.event_id))
    assert await stock_row(stack, sku) == (10, 3)
    row = await shipment(stack, order_id)
    assert row["status"] == "requested" and row["warehouse_request_id"] not in (None, old_request)
    assert await lines_of(stack, order_id) == {sku: 3}

    shipment_id = str(row["shipment_id"])
    reply = await command(stack, recorder, ExportLabels(**STAFF, shipment_ids=[row["shipment_id"]]))
    header, label, *_ = base64.b64decode(reply["details"]["content_base64"]).decode("cp932").split("\r\n")
    number, label_no = valid_tracking_number(uuid.UUID(shipment_id).int), label.split(",")[0]
    issued = f"{header}\r\n{label.replace(f'{label_no},0,0,,', f'{label_no},0,0,{number},', 1)}\r\n"
    assert [r["ok"] for r in (await command(stack, recorder, ImportTrackingCsv(**STAFF, csv=issued)))["results"]] == [True]
    [shipped] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id, timeout=60)
    assert shipped.json()["lines"] == [{"sku": sku, "quantity": 3}]
    assert await stock_row(stack, sku) == (7, 0)


async def test_an_edit_without_adjusting_stock_leaves_stock_alone_but_the_warehouse_request_follows(stack, recorder):
    sku, added = f"EDN-{uuid.uuid4().hex[:8]}", f"EDN-{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, sku, 10)
    await import_stock(stack, recorder, added, 10)
    order = with_sku(980_002, sku, 3, carrier="yamato_b2")
    order_id = await submit(stack, order)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=order_id, timeout=90)

    await edit(stack, order, order_id, [(sku, 1), (added, 2)], adjust_stock=False)
    [applied] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShippingEditApplied", order_id=order_id, timeout=60)
    body = applied.json()
    assert (body["stock_adjusted"], body["released"], body["allocated"], body["shipments_reissued"]) == (False, [], [], 1)
    assert body["allocation"] == "partial"
    assert await stock_row(stack, sku) == (10, 3)
    assert await stock_row(stack, added) == (10, 0)
    assert await lines_of(stack, order_id) == {sku: 1, added: 2}


async def test_an_edit_of_a_delivery_the_warehouse_already_picked_is_refused_and_changes_nothing(stack, recorder):
    sku = f"PICKED-{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, sku, 10)
    order = with_sku(980_003, sku, 2, carrier="yamato_b2")
    order_id = await submit(stack, order)
    [requested] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=order_id, timeout=90)

    await edit(stack, order, order_id, [(sku, 5)])
    [refused] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShippingEditRefused", order_id=order_id, timeout=60)
    assert (refused.json()["delivery_index"], refused.json()["edit_no"]) == (0, 1)
    assert "already_picked" in refused.json()["reason"]
    assert recorder.on(topics.SHIPPING_EVENTS, type="ShippingEditApplied", order_id=order_id) == []
    assert await stock_row(stack, sku) == (10, 2)
    assert await lines_of(stack, order_id) == {sku: 2}
    row = await shipment(stack, order_id)
    assert (row["status"], row["warehouse_request_id"]) == ("requested", requested.json()["warehouse_request_id"])


async def test_an_edit_arriving_after_the_delivery_shipped_is_refused_and_shipped_units_leave_stock_once(stack, recorder):
    sku = f"EDS-{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, sku, 10)
    order = with_sku(980_004, sku, 2)
    order_id = await submit(stack, order)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id, timeout=90)

    await edit(stack, order, order_id, [(sku, 4)])
    [refused] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShippingEditRefused", order_id=order_id, timeout=60)
    assert refused.json()["reason"].startswith("delivery 0 already ")
    assert recorder.on(topics.SHIPPING_EVENTS, type="ShippingEditApplied", order_id=order_id) == []
    assert await stock_row(stack, sku) == (8, 0)
    assert await lines_of(stack, order_id) == {sku: 2}


async def test_an_added_frozen_sku_to_an_area_without_frozen_delivery_fails_the_label_check_again(stack, recorder):
    sku, frozen = f"EDF-{uuid.uuid4().hex[:8]}", f"EDF-{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, sku, 10)
    await import_stock(stack, recorder, frozen, 10, cool_type="frozen")
    order = with_sku(980_005, sku, 1, address=MIKURAJIMA)
    order_id = await submit(stack, order)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="DeliveryDateChecked", order_id=order_id, timeout=90)
    assert recorder.on(topics.SHIPPING_EVENTS, type="LabelCheckFailed", order_id=order_id, kind="frozen_not_available") == []

    edited = await edit(stack, order, order_id, [(sku, 1), (frozen, 1)])
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShippingEditApplied", order_id=order_id, timeout=60)
    [failed] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="LabelCheckFailed", order_id=order_id, kind="frozen_not_available", timeout=30)
    assert (failed.json()["causation_id"], failed.json()["delivery_index"]) == (str(edited.event_id), 0)
    rechecked = recorder.on(topics.SHIPPING_EVENTS, type="DeliveryDateChecked", order_id=order_id, causation_id=edited.event_id)
    assert len(rechecked) == 1


async def test_an_edit_of_a_cancelled_order_does_nothing(stack, recorder):
    from ordermesh_contracts import OrderCancelled

    sku = f"EDC-{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, sku, 10)
    order = with_sku(980_006, sku, 2, carrier="yamato_b2")
    order_id = await submit(stack, order)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=order_id, timeout=90)
    cancelled = OrderCancelled(
        order_id=order_id, shop_id=order.shop_id, external_order_no=order.external_order_no,
        customer_id=order.customer.customer_id, reason="e2e", restore_stock=True, cancel_payment=False,
        notify_customer=False, cancelled_by="e2e", correlation_id=uuid.uuid4(),
    )
    await publish_raw(stack.bootstrap, topics.ORDERS_EVENTS, cancelled.model_dump_json().encode(), str(order_id).encode())
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="OrderShippingCancelled", order_id=order_id, timeout=60)

    edited = await edit(stack, order, order_id, [(sku, 5)])
    await eventually(lambda: _inbox_has(stack, edited.event_id))
    assert recorder.on(topics.SHIPPING_EVENTS, order_id=order_id, causation_id=edited.event_id) == []
    assert await stock_row(stack, sku) == (10, 0)
    assert await lines_of(stack, order_id) == {sku: 2}


async def _inbox_has(stack, message_id) -> bool:
    return bool(await fetch(stack.service_dsns["shipping"], "SELECT 1 FROM inbox WHERE message_id = $1", message_id))
