"""Cancelling an order's shipping on a real PostgreSQL: warehouse requests cancelled, stock released (or not) as
staff chose, nothing allocated or requested afterwards, and the failure cases (already shipped, warehouse down)."""

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path
from uuid import uuid4

import pytest
from ordermesh_contracts import (
    DeliveryGroup,
    ExportLabels,
    ImportStock,
    OrderAccepted,
    OrderCancelled,
    OrderLine,
    OrderProgressed,
    Payment,
    PaymentMethod,
    Stage,
    StockLevel,
    WarehouseShipmentReported,
    topics,
)
from ordermesh_servicekit.commands import CommandRefused
from ordermesh_servicekit.consuming import MessageContext, TransientError
from ordermesh_shipping import store, store_shipments, store_stock
from ordermesh_shipping.adapters.warehouse import ShipmentRequest, WarehouseRejected
from ordermesh_shipping.commands import ShippingCommands
from ordermesh_shipping.domain.allocation import shipment_id_for
from ordermesh_shipping.handlers import ShippingHandlers

GOLDEN = Path(__file__).resolve().parents[3] / "contracts" / "tests" / "golden"
STAFF = {"shop_id": "kyoto-tea", "issued_by": "staff:test"}


class CancellingWarehouse:
    """Takes shipment requests; cancels them, or answers each cancel with the failure it is told to."""

    def __init__(self) -> None:
        self.requests: list[ShipmentRequest] = []
        self.cancels: list[str] = []
        self.cancel_failures: dict[str, Exception] = {}

    async def request_shipment(self, request: ShipmentRequest) -> str:
        self.requests.append(request)
        return f"wr_{request.shipment_id[:8]}"

    async def cancel_shipment(self, request_id: str) -> None:
        self.cancels.append(request_id)
        if failure := self.cancel_failures.get(request_id):
            raise failure


@pytest.fixture
def warehouse() -> CancellingWarehouse:
    return CancellingWarehouse()


@pytest.fixture
def handlers(warehouse) -> ShippingHandlers:
    return ShippingHandlers(warehouse, max_request_attempts=3)


def ctx(pool, message) -> MessageContext:
    return MessageContext(pool, message.event_id, "test", log=None)


def order(*groups: dict[str, int], carrier: str = "yamato") -> OrderAccepted:
    golden = OrderAccepted.model_validate(json.loads((GOLDEN / "OrderAccepted.json").read_text("utf-8")))
    template = golden.deliveries[0]
    deliveries = [
        DeliveryGroup(
            address=template.address,
            carrier=carrier,
            lines=[OrderLine(sku=sku, name=f"品 {sku}", unit_price=1000, quantity=qty, tax_rate_percent=10) for sku, qty in group.items()],
        )
        for group in groups
    ]
    return golden.model_copy(
        update={
            "event_id": uuid4(),
            "order_id": uuid4(),
            "deliveries": deliveries,
            "payment": Payment(method=PaymentMethod.CARD, card_token="tok"),
            "occurred_at": datetime.now(timezone.utc),
        }
    )


def progressed(accepted: OrderAccepted, stage: Stage) -> OrderProgressed:
    return OrderProgressed(
        order_id=accepted.order_id, shop_id=accepted.shop_id, from_stage=Stage.AWAITING_PAYMENT, to_stage=stage,
        correlation_id=accepted.correlation_id,
    )


def cancellation(accepted: OrderAccepted, *, restore_stock: bool) -> OrderCancelled:
    return OrderCancelled(
        order_id=accepted.order_id, shop_id=accepted.shop_id, external_order_no=accepted.external_order_no,
        customer_id=accepted.customer.customer_id, reason="customer cancelled by phone", restore_stock=restore_stock,
        cancel_payment=True, notify_customer=False, cancelled_by="staff:test", correlation_id=accepted.correlation_id,
    )


async def published(pool, topic=topics.SHIPPING_EVENTS, **match) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topic)
    events = [json.loads(row["payload"]) for row in rows]
    return [e for e in events if all(str(e.get(k)) == str(v) for k, v in match.items())]


async def stock(pool, sku) -> tuple[int, int]:
    row = await pool.fetchrow("SELECT on_hand, allocated FROM stock WHERE sku = $1 AND warehouse = 'main'", sku)
    return (row["on_hand"], row["allocated"])


async def set_stock(pool, **levels: int) -> None:
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [(sku, "main", units) for sku, units in levels.items()])


async def handle(pool, handlers, message) -> None:
    if isinstance(message, OrderAccepted):
        await handlers.on_order_accepted(message, ctx(pool, message))
    elif isinstance(message, OrderProgressed):
        await handlers.on_order_progressed(message, ctx(pool, message))
    else:
        await handlers.on_order_cancelled(message, ctx(pool, message))


async def until_requested(pool, handlers, accepted) -> None:
    for message in (accepted, progressed(accepted, Stage.AWAITING_ALLOCATION), progressed(accepted, Stage.READY_TO_SHIP)):
        await handle(pool, handlers, message)


async def import_stock(pool, **levels: int) -> dict:
    command = ImportStock(**STAFF, lines=[StockLevel(sku=sku, on_hand=units) for sku, units in levels.items()])
    await ShippingCommands().import_stock(command, ctx(pool, command))
    [reply] = await published(pool, topics.OPS_REPLIES, command_id=command.event_id)
    return reply


async def test_a_requested_shipment_is_cancelled_at_the_warehouse_and_its_stock_goes_back_when_asked(pool, handlers, warehouse) -> None:
    await set_stock(pool, A=5, B=5)
    accepted = order({"A": 2, "B": 1})
    await until_requested(pool, handlers, accepted)
    assert await stock(pool, "A") == (5, 2)

    cancelled = cancellation(accepted, restore_stock=True)
    await handle(pool, handlers, cancelled)

    shipment_id = shipment_id_for(accepted.order_id, 0)
    assert warehouse.cancels == [f"wr_{str(shipment_id)[:8]}"]
    [answer] = await published(pool, order_id=accepted.order_id, type="OrderShippingCancelled")
    assert (answer["shipments_cancelled"], answer["stock_released"]) == (1, True)
    assert answer["released"] == [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]
    assert (answer["causation_id"], answer["correlation_id"]) == (str(cancelled.event_id), str(accepted.correlation_id))
    [row] = await store_shipments.shipments_of_order(pool, accepted.order_id)
    assert row["status"] == "cancelled"
    assert (await stock(pool, "A"), await stock(pool, "B")) == ((5, 0), (5, 0))
    released = await pool.fetch("SELECT sku, quantity, released FROM allocations WHERE order_id = $1 ORDER BY sku", accepted.order_id)
    assert [tuple(r) for r in released] == [("A", 0, 2), ("B", 0, 1)]


async def test_without_restore_stock_the_warehouse_request_is_cancelled_but_stock_stays_allocated(pool, handlers, warehouse) -> None:
    await set_stock(pool, A=5)
    accepted = order({"A": 2})
    await until_requested(pool, handlers, accepted)
    await handle(pool, handlers, cancellation(accepted, restore_stock=False))
    [answer] = await published(pool, order_id=accepted.order_id, type="OrderShippingCancelled")
    assert (answer["shipments_cancelled"], answer["stock_released"], answer["released"]) == (1, False, [])
    assert len(warehouse.cancels) == 1
    [row] = await store_shipments.shipments_of_order(pool, accepted.order_id)
    assert row["status"] == "cancelled"
    assert await stock(pool, "A") == (5, 2)


async def test_a_cancelled_waiting_order_is_skipped_by_stock_imports_and_the_next_one_gets_the_stock(pool, handlers) -> None:
    await set_stock(pool, MATCHA=1)
    cancelled_one, next_one = order({"MATCHA": 3}), order({"MATCHA": 2})
    for accepted in (cancelled_one, next_one):
        await handle(pool, handlers, accepted)
        await handle(pool, handlers, progressed(accepted, Stage.AWAITING_ALLOCATION))
    assert await stock(pool, "MATCHA") == (1, 1)
    await handle(pool, handlers, cancellation(cancelled_one, restore_stock=False))
    [answer] = await published(pool, order_id=cancelled_one.order_id, type="OrderShippingCancelled")
    assert (answer["shipments_cancelled"], answer["stock_released"]) == (0, False)
    assert await stock(pool, "MATCHA") == (1, 1)

    reply = await import_stock(pool, MATCHA=10)
    assert reply["details"]["allocated_orders"] == [{"order_id": str(next_one.order_id), "allocation": "full"}]
    assert await stock(pool, "MATCHA") == (10, 3)
    assert await store_stock.allocated_to(pool, cancelled_one.order_id) == {"MATCHA": 1}
    assert len(await published(pool, order_id=cancelled_one.order_id, type="StockAllocated")) == 1


async def test_a_cancelled_partly_allocated_order_gives_its_units_back_and_stays_out_of_the_queue(pool, handlers) -> None:
    await set_stock(pool, MATCHA=1)
    accepted = order({"MATCHA": 3})
    await handle(pool, handlers, accepted)
    await handle(pool, handlers, progressed(accepted, Stage.AWAITING_ALLOCATION))
    await handle(pool, handlers, cancellation(accepted, restore_stock=True))
    [answer] = await published(pool, order_id=accepted.order_id, type="OrderShippingCancelled")
    assert answer["released"] == [{"sku": "MATCHA", "quantity": 1}]
    assert await stock(pool, "MATCHA") == (1, 0)
    reply = await import_stock(pool, MATCHA=10)
    assert reply["details"]["allocated_orders"] == []
    assert await stock(pool, "MATCHA") == (10, 0)
    request = await pool.fetchrow("SELECT coverage FROM allocation_requests WHERE order_id = $1", accepted.order_id)
    assert request["coverage"] == "cancelled"


async def test_nothing_is_allocated_or_requested_for_an_order_after_it_was_cancelled(pool, handlers, warehouse) -> None:
    await set_stock(pool, A=5)
    accepted = order({"A": 2})
    await handle(pool, handlers, accepted)
    await handle(pool, handlers, cancellation(accepted, restore_stock=True))
    late_allocation, late_request = progressed(accepted, Stage.AWAITING_ALLOCATION), progressed(accepted, Stage.READY_TO_SHIP)
    await handle(pool, handlers, late_allocation)
    await handle(pool, handlers, late_request)
    assert await stock(pool, "A") == (5, 0)
    assert warehouse.requests == []
    assert await store_shipments.shipments_of_order(pool, accepted.order_id) == []
    types = [e["type"] for e in await published(pool, order_id=accepted.order_id)]
    assert types == ["DeliveryDateChecked", "OrderShippingCancelled"]
    inbox = await pool.fetchval("SELECT count(*) FROM inbox WHERE message_id = ANY($1::uuid[])", [late_allocation.event_id, late_request.event_id])
    assert inbox == 2


async def test_a_shipment_the_warehouse_already_shipped_fails_to_cancel_and_its_units_ship_with_it(pool, handlers, warehouse) -> None:
    await set_stock(pool, A=5, B=5)
    accepted = order({"A": 2}, {"B": 1})
    await until_requested(pool, handlers, accepted)
    first, second = shipment_id_for(accepted.order_id, 0), shipment_id_for(accepted.order_id, 1)
    warehouse.cancel_failures[f"wr_{str(second)[:8]}"] = WarehouseRejected('warehouse answered 409: {"error":"already_shipped"}')

    await handle(pool, handlers, cancellation(accepted, restore_stock=True))

    [failed] = await published(pool, order_id=accepted.order_id, type="ShipmentCancelFailed")
    assert (failed["shipment_id"], failed["delivery_index"], failed["stock_released"]) == (str(second), 1, True)
    assert "409" in failed["reason"] and "already_shipped" in failed["reason"]
    assert await published(pool, order_id=accepted.order_id, type="OrderShippingCancelled") == []
    rows = {row["shipment_id"]: row for row in await store_shipments.shipments_of_order(pool, accepted.order_id)}
    assert rows[first]["status"] == "cancelled"
    assert (rows[second]["status"], rows[second]["cancel_error"]) == ("requested", failed["reason"])
    assert (await stock(pool, "A"), await stock(pool, "B")) == ((5, 0), (5, 1))

    report = WarehouseShipmentReported(
        shipment_id=second, order_id=accepted.order_id, warehouse_request_id="wr", carrier="yamato",
        tracking_number="123456789013", shipped_at=datetime.now(timezone.utc), lines=[{"sku": "B", "quantity": 1}],
    )
    await handlers.on_warehouse_shipment_reported(report, ctx(pool, report))
    assert await stock(pool, "B") == (4, 0)
    [shipped] = await published(pool, order_id=accepted.order_id, type="ShipmentShipped")
    assert shipped["shipment_id"] == str(second)


async def test_a_shipment_already_shipped_when_the_cancel_arrives_is_reported_without_asking_the_warehouse(pool, handlers, warehouse) -> None:
    await set_stock(pool, A=5)
    accepted = order({"A": 2})
    await until_requested(pool, handlers, accepted)
    report = WarehouseShipmentReported(
        shipment_id=shipment_id_for(accepted.order_id, 0), order_id=accepted.order_id, warehouse_request_id="wr",
        carrier="yamato", tracking_number="123456789013", shipped_at=datetime.now(timezone.utc), lines=[{"sku": "A", "quantity": 2}],
    )
    await handlers.on_warehouse_shipment_reported(report, ctx(pool, report))
    await handle(pool, handlers, cancellation(accepted, restore_stock=True))
    [failed] = await published(pool, order_id=accepted.order_id, type="ShipmentCancelFailed")
    assert failed["reason"] == "shipment already shipped"
    assert warehouse.cancels == []
    assert await stock(pool, "A") == (3, 0)


async def test_a_warehouse_that_stays_down_is_retried_then_the_cancel_fails_for_staff_and_the_rest_is_released(pool, handlers, warehouse) -> None:
    await set_stock(pool, A=5)
    accepted = order({"A": 2})
    await until_requested(pool, handlers, accepted)
    shipment_id = shipment_id_for(accepted.order_id, 0)
    warehouse.cancel_failures[f"wr_{str(shipment_id)[:8]}"] = TransientError("warehouse answered 503")
    cancelled = cancellation(accepted, restore_stock=True)
    for _attempt in range(2):
        with pytest.raises(TransientError):
            await handle(pool, handlers, cancelled)
        assert await published(pool, order_id=accepted.order_id, causation_id=cancelled.event_id) == []
    await handle(pool, handlers, cancelled)
    [failed] = await published(pool, order_id=accepted.order_id, causation_id=cancelled.event_id)
    assert failed["type"] == "ShipmentCancelFailed"
    assert failed["reason"] == "TransientError: warehouse answered 503 (after 3 attempts)"
    [row] = await store_shipments.shipments_of_order(pool, accepted.order_id)
    assert (row["status"], row["cancel_attempts"]) == ("requested", 3)
    assert await stock(pool, "A") == (5, 2)
    assert await store.is_cancelled(pool, accepted.order_id)


async def test_the_same_cancellation_delivered_twice_cancels_once_and_answers_once(pool, handlers, warehouse) -> None:
    await set_stock(pool, A=5)
    accepted = order({"A": 2})
    await until_requested(pool, handlers, accepted)
    cancelled = cancellation(accepted, restore_stock=True)
    await handle(pool, handlers, cancelled)
    await handle(pool, handlers, cancelled)
    assert len(warehouse.cancels) == 1
    assert len(await published(pool, order_id=accepted.order_id, type="OrderShippingCancelled")) == 1
    assert await stock(pool, "A") == (5, 0)


async def test_a_cancellation_racing_a_stock_import_never_leaves_stock_allocated_to_the_cancelled_order(pool, handlers) -> None:
    for round_ in range(10):
        sku = f"RACE-{round_}"
        await set_stock(pool, **{sku: 1})
        accepted = order({sku: 3})
        await handle(pool, handlers, accepted)
        await handle(pool, handlers, progressed(accepted, Stage.AWAITING_ALLOCATION))
        command = ImportStock(**STAFF, lines=[StockLevel(sku=sku, on_hand=5)])
        cancelled = cancellation(accepted, restore_stock=True)
        await asyncio.gather(
            ShippingCommands().import_stock(command, ctx(pool, command)), handle(pool, handlers, cancelled)
        )
        assert await stock(pool, sku) == (5, 0)
        assert await store_stock.allocated_to(pool, accepted.order_id) == {sku: 0}


async def test_a_ship_report_after_a_cancel_is_flagged_and_stock_on_hand_drops_without_touching_allocations(pool, handlers) -> None:
    await set_stock(pool, A=5, B=5)
    other = order({"A": 1})
    await until_requested(pool, handlers, other)
    accepted = order({"A": 2})
    await until_requested(pool, handlers, accepted)
    await handle(pool, handlers, cancellation(accepted, restore_stock=True))
    assert await stock(pool, "A") == (5, 1)
    report = WarehouseShipmentReported(
        shipment_id=shipment_id_for(accepted.order_id, 0), order_id=accepted.order_id, warehouse_request_id="wr",
        carrier="yamato", tracking_number="123456789013", shipped_at=datetime.now(timezone.utc), lines=[{"sku": "A", "quantity": 2}],
    )
    await handlers.on_warehouse_shipment_reported(report, ctx(pool, report))
    [row] = await store_shipments.shipments_of_order(pool, accepted.order_id)
    assert (row["status"], row["flagged"]) == ("cancelled", "shipped_after_cancel")
    assert await stock(pool, "A") == (3, 1)
    [failed] = await published(pool, type="ShipmentCancelFailed", order_id=accepted.order_id)
    assert (failed["stock_released"], failed["causation_id"]) == (True, str(report.event_id))
    assert failed["reason"] == row["cancel_error"] == "shipped after the order was cancelled: goods left without an order (yamato 123456789013)"
    assert await published(pool, type="ShipmentShipped", order_id=accepted.order_id) == []


async def test_a_ship_report_after_a_cancel_that_kept_the_stock_takes_the_kept_units_out_of_the_allocation(pool, handlers) -> None:
    await set_stock(pool, A=5)
    other = order({"A": 1})
    await until_requested(pool, handlers, other)
    accepted = order({"A": 2})
    await until_requested(pool, handlers, accepted)
    await handle(pool, handlers, cancellation(accepted, restore_stock=False))
    assert await stock(pool, "A") == (5, 3)
    report = WarehouseShipmentReported(
        shipment_id=shipment_id_for(accepted.order_id, 0), order_id=accepted.order_id, warehouse_request_id="wr",
        carrier="yamato", tracking_number="123456789013", shipped_at=datetime.now(timezone.utc), lines=[{"sku": "A", "quantity": 2}],
    )
    again = report.model_copy(update={"event_id": uuid4()})
    for message in (report, again):
        await handlers.on_warehouse_shipment_reported(message, ctx(pool, message))
    assert await stock(pool, "A") == (3, 1)
    assert await store_stock.allocated_to(pool, other.order_id) == {"A": 1}
    [failed] = await published(pool, type="ShipmentCancelFailed", order_id=accepted.order_id, causation_id=report.event_id)
    assert failed["stock_released"] is False
    assert await published(pool, type="ShipmentCancelFailed", order_id=accepted.order_id, causation_id=again.event_id) == []


async def test_labels_are_refused_for_a_cancelled_shipment(pool, handlers) -> None:
    await set_stock(pool, A=5)
    accepted = order({"A": 1}, carrier="yamato_b2")
    await until_requested(pool, handlers, accepted)
    await handle(pool, handlers, cancellation(accepted, restore_stock=True))
    shipment_id = shipment_id_for(accepted.order_id, 0)
    export = ExportLabels(**STAFF, shipment_ids=[shipment_id])
    with pytest.raises(CommandRefused) as refused:
        await ShippingCommands().export_labels(export, ctx(pool, export))
    assert refused.value.reasons == [f"shipment {shipment_id} is cancelled"]
