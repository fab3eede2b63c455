"""End to end on the real suite: a delivery group that fails a carrier label check is not requested from the warehouse
until staff resolve it — by another carrier or time slot, or by confirming the check — whichever order the check's
failure, the allocation and the order's ready-to-ship reach each service in; a failure an edit brings after the group
was requested withdraws it from the warehouse."""

import json
import uuid

from ordermesh_contracts import (
    Address,
    ChangeDeliveryMethod,
    CloseTask,
    EditOrder,
    ImportStock,
    LineChange,
    Payment,
    PaymentMethod,
    StockLevel,
    topics,
)
from support import eventually, fetch
from test_edits_across_suite import line, order_of, place, send

OGASAWARA = Address(
    name="父島 太郎", postal_code="100-2101", prefecture="東京都", city="小笠原村", line1="父島字東町1-1", phone="04998-2-0000"
)
STAFF = {"shop_id": "demo-shop", "issued_by": "staff:e2e"}


def _sku(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def _to(order, address: Address | None = None, **delivery):
    group = order.deliveries[0].model_copy(update={**({"address": address} if address else {}), **delivery})
    return order.model_copy(update={"deliveries": [group]})


async def _shipment(stack, order_id) -> dict | None:
    rows = await fetch(stack.service_dsns["shipping"], "SELECT * FROM shipments WHERE order_id = $1", order_id)
    return dict(rows[0]) if rows else None


async def _order(stack, order_id) -> dict:
    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage, flags FROM orders WHERE order_id = $1", order_id)
    return {"stage": row["stage"], **json.loads(row["flags"])}


async def _open_task(stack, order_id, kind: str) -> int | None:
    rows = await fetch(
        stack.service_dsns["orders"], "SELECT task_id FROM order_tasks WHERE order_id = $1 AND kind = $2 AND status = 'open'",
        order_id, kind,
    )
    return rows[0]["task_id"] if rows else None


async def _held(stack, order_id) -> dict | None:
    shipment = await _shipment(stack, order_id)
    return shipment if shipment and shipment["status"] == "held" else None


async def _stock(stack, recorder, levels: list[StockLevel]) -> None:
    reply = await send(stack, topics.SHIPPING_COMMANDS, ImportStock(**STAFF, lines=levels, allow_new_skus=True))
    assert reply["type"] == "CommandAccepted", reply


async def test_a_cash_on_delivery_order_yamato_cannot_collect_on_ogasawara_waits_for_staff_then_ships(stack, recorder):
    code = _sku("COD")
    await stack.set_stock({code: 5})
    order = _to(order_of(994_001, [line(code, 1)], payment=Payment(method=PaymentMethod.CASH_ON_DELIVERY)), OGASAWARA)
    order_id = await place(stack, order)

    [failed] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="LabelCheckFailed", order_id=order_id, timeout=90)
    assert failed.json()["kind"] == "cash_on_delivery_not_available"
    # allocated and ready to ship on the orders side, however late the failure reached it: shipping holds the parcel
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderProgressed", order_id=order_id, to_stage="ready_to_ship", timeout=90)
    [held] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentHeld", order_id=order_id, timeout=60)
    assert held.json()["checks"] == ["cash_on_delivery_not_available"]
    assert recorder.on(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=order_id) == []
    assert (await _held(stack, order_id))["warehouse_request_id"] is None
    flags = await eventually(lambda: _flags(stack, order_id, shipment_hold="held"), timeout=60)
    assert (flags["stage"], flags["label_check"]) == ("ready_to_ship", "failed")

    # another carrier can't collect there either: refused with the reason, nothing changes
    refused = await send(stack, topics.SHIPPING_COMMANDS, ChangeDeliveryMethod(**STAFF, order_id=order_id, carrier="sagawa"))
    assert refused["type"] == "CommandRejected", refused
    assert refused["reasons"] == ["with sagawa: delivery 0: sagawa has no cash on delivery in Ogasawara islands"]
    assert (await _held(stack, order_id))["carrier"] == "yamato"

    # staff settle it with the customer and confirm the check by closing its task: the parcel goes out
    task_id = await _open_task(stack, order_id, "label_check_failed")
    closed = await send(stack, topics.ORDERS_COMMANDS, CloseTask(**STAFF, order_id=order_id, task_id=task_id, note="paid in advance"))
    assert closed["type"] == "CommandAccepted", closed
    [released] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentHoldReleased", order_id=order_id, timeout=60)
    assert (released.json()["how"], released.json()["still_held"]) == ("confirmed", 0)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=order_id, timeout=60)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id, timeout=90)
    flags = await eventually(lambda: _flags(stack, order_id, shipment_hold="released"), timeout=60)
    assert flags["label_check"] == "confirmed"


async def test_a_time_slot_the_carrier_lacks_holds_the_parcel_until_staff_choose_a_carrier_that_has_it(stack, recorder):
    code = _sku("SLOT")
    await stack.set_stock({code: 5})
    order_id = await place(stack, _to(order_of(994_002, [line(code, 1)]), time_slot="12-14"))

    [held] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentHeld", order_id=order_id, timeout=120)
    assert held.json()["reasons"] == ["delivery 0: yamato has no time slot 12-14"]
    assert recorder.on(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=order_id) == []

    changed = await send(stack, topics.SHIPPING_COMMANDS, ChangeDeliveryMethod(**STAFF, order_id=order_id, carrier="sagawa"))
    assert changed["type"] == "CommandAccepted", changed
    assert changed["details"] == {"carrier": "sagawa", "time_slot": "12-14", "released": True}
    [released] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentHoldReleased", order_id=order_id, timeout=60)
    assert (released.json()["how"], released.json()["carrier"]) == ("method_changed", "sagawa")
    [shipped] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id, timeout=90)
    assert shipped.json()["carrier"] == "sagawa"
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)
    flags = await _order(stack, order_id)
    assert (flags["label_check"], flags["shipment_hold"]) == ("resolved", "released")
    assert await _open_task(stack, order_id, "label_check_failed") is None


async def test_a_check_an_edit_fails_after_the_request_withdraws_the_parcel_and_one_failing_while_waiting_for_stock_holds_it(stack, recorder):
    plain, chilled, missing = _sku("PLAIN"), _sku("CHILL"), _sku("LATE")
    await _stock(stack, recorder, [StockLevel(sku=plain, on_hand=10), StockLevel(sku=chilled, on_hand=10, cool_type="chilled")])
    # requested at the warehouse (B2 labels: it waits there for the tracking file), then edited to carry a chilled item
    requested_first = _to(order_of(994_003, [line(plain, 1)]), OGASAWARA, carrier="yamato_b2")
    first_id = await place(stack, requested_first)
    [request] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=first_id, timeout=120)
    # waiting for stock, then edited the same way: the failure is known before the order is ready to ship
    waiting = _to(order_of(994_004, [line(missing, 1)]), OGASAWARA, carrier="yamato_b2")
    waiting_id = await place(stack, waiting)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=waiting_id, allocation="none", timeout=120)

    for order_id in (first_id, waiting_id):
        edit = EditOrder(
            **STAFF, order_id=order_id, reason="add a chilled gift", adjust_stock=True,
            lines=[LineChange(sku=chilled, quantity=1, name="冷蔵ギフト", unit_price=1000, tax_rate_percent=8)],
        )
        reply = await send(stack, topics.ORDERS_COMMANDS, edit)
        assert reply["type"] == "CommandAccepted", reply

    [held] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentHeld", order_id=first_id, timeout=90)
    assert held.json()["checks"] == ["chilled_not_available"]
    shipment = await _held(stack, first_id)
    assert shipment is not None and shipment["warehouse_request_id"] is None
    assert len(recorder.on(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=first_id)) == 1
    assert request.json()["warehouse_request_id"]

    await _stock(stack, recorder, [StockLevel(sku=missing, on_hand=5)])
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderProgressed", order_id=waiting_id, to_stage="ready_to_ship", timeout=90)
    [held_later] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentHeld", order_id=waiting_id, timeout=60)
    assert held_later.json()["checks"] == ["chilled_not_available"]
    assert recorder.on(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=waiting_id) == []

    # staff confirm both (the customer agreed to an unchilled delivery): each goes to the warehouse again
    for order_id in (first_id, waiting_id):
        task_id = await eventually(lambda: _open_task(stack, order_id, "label_check_failed"), timeout=60)
        closed = await send(stack, topics.ORDERS_COMMANDS, CloseTask(**STAFF, order_id=order_id, task_id=task_id))
        assert closed["type"] == "CommandAccepted", closed
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=first_id, count=2, timeout=90)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=waiting_id, timeout=90)
    for order_id in (first_id, waiting_id):
        shipment = await _shipment(stack, order_id)
        assert shipment["status"] == "requested" and shipment["warehouse_request_id"]


async def _flags(stack, order_id, **expected) -> dict | None:
    flags = await _order(stack, order_id)
    return flags if all(flags.get(k) == v for k, v in expected.items()) else None
