"""Shipping's handlers and store on a real PostgreSQL: concurrent allocation, stock imports, waiting orders,
dates and label checks, warehouse failures, label export and tracking import, delivery."""

import asyncio
import base64
import json
from datetime import date, datetime, timezone
from pathlib import Path
from uuid import uuid4

import pytest
from ordermesh_contracts import (
    DeliveryGroup,
    ExportLabels,
    ImportStock,
    ImportTrackingCsv,
    OrderAccepted,
    OrderLine,
    OrderProgressed,
    Payment,
    PaymentMethod,
    Stage,
    StockLevel,
    WarehouseDeliveryReported,
    WarehouseShipmentReported,
    topics,
)
from ordermesh_servicekit.commands import CommandRefused
from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext, TransientError
from ordermesh_shipping import store, store_shipments, store_stock
from ordermesh_shipping.adapters.warehouse import ShipmentRequest, WarehouseRejected
from ordermesh_shipping.commands import ShippingCommands
from ordermesh_shipping.domain.allocation import shipment_id_for
from ordermesh_shipping.handlers import ShippingHandlers

GOLDEN = Path(__file__).resolve().parents[3] / "contracts" / "tests" / "golden"
STAFF = {"shop_id": "kyoto-tea", "issued_by": "staff:test"}


class FakeWarehouse:
    """Takes requests (or fails them as told) and remembers them."""

    def __init__(self) -> None:
        self.requests: list[ShipmentRequest] = []
        self.failure: Exception | None = None

    async def request_shipment(self, request: ShipmentRequest) -> str:
        if self.failure:
            raise self.failure
        self.requests.append(request)
        return f"wr_{request.shipment_id[:8]}"


@pytest.fixture
def warehouse() -> FakeWarehouse:
    return FakeWarehouse()


@pytest.fixture
def handlers(warehouse) -> ShippingHandlers:
    return ShippingHandlers(warehouse, max_request_attempts=3)


def ctx(pool, message) -> MessageContext:
    return MessageContext(pool, message.event_id, "test", log=None)


def order(lines: dict[str, int] | list[dict[str, int]], *, carrier="yamato", method=PaymentMethod.CARD, **delivery) -> OrderAccepted:
    golden = OrderAccepted.model_validate(json.loads((GOLDEN / "OrderAccepted.json").read_text("utf-8")))
    groups = lines if isinstance(lines, list) else [lines]
    template = golden.deliveries[0]
    deliveries = [
        DeliveryGroup(
            address=delivery.get("address", template.address),
            requested_date=delivery.get("requested_date"),
            time_slot=delivery.get("time_slot"),
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
            "payment": Payment(method=method, card_token="tok" if method is PaymentMethod.CARD else None),
            "occurred_at": delivery.get("occurred_at", datetime.now(timezone.utc)),
        }
    )


def progressed(accepted: OrderAccepted, stage: Stage) -> OrderProgressed:
    return OrderProgressed(
        order_id=accepted.order_id, shop_id=accepted.shop_id, from_stage=Stage.AWAITING_PAYMENT, to_stage=stage,
        correlation_id=accepted.correlation_id,
    )


async def published(pool, topic=topics.SHIPPING_EVENTS, **match) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topic)
    events = [json.loads(row["payload"]) for row in rows]
    return [e for e in events if all(str(e.get(k)) == str(v) for k, v in match.items())]


async def stock(pool, sku) -> tuple[int, int]:
    row = await pool.fetchrow("SELECT on_hand, allocated FROM stock WHERE sku = $1 AND warehouse = 'main'", sku)
    return (row["on_hand"], row["allocated"]) if row else (0, 0)


async def accept_and_allocate(pool, handlers, accepted) -> str:
    await handlers.on_order_accepted(accepted, ctx(pool, accepted))
    message = progressed(accepted, Stage.AWAITING_ALLOCATION)
    await handlers.on_order_progressed(message, ctx(pool, message))
    [event] = await published(pool, type="StockAllocated", order_id=accepted.order_id, causation_id=message.event_id)
    return event["allocation"]


async def test_two_orders_for_the_last_unit_allocated_at_the_same_time_exactly_one_gets_it(pool, handlers) -> None:
    for round_ in range(15):
        sku = f"LAST-{round_}"
        async with pool.acquire() as conn:
            await store_stock.set_stock(conn, [(sku, "main", 1)])
        first, second = order({sku: 1}), order({sku: 1})
        for accepted in (first, second):
            await handlers.on_order_accepted(accepted, ctx(pool, accepted))
        messages = [progressed(first, Stage.AWAITING_ALLOCATION), progressed(second, Stage.AWAITING_ALLOCATION)]
        await asyncio.gather(*(handlers.on_order_progressed(m, ctx(pool, m)) for m in messages))
        outcomes = sorted([(await published(pool, type="StockAllocated", order_id=o.order_id))[0]["allocation"] for o in (first, second)])
        assert outcomes == ["full", "none"]
        assert await stock(pool, sku) == (1, 1)


async def test_an_allocation_that_waits_for_a_cancellation_holding_its_request_allocates_nothing_after_it(pool, handlers) -> None:
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("WAIT-1", "main", 1)])
    accepted = order({"WAIT-1": 3})
    assert await accept_and_allocate(pool, handlers, accepted) == "partial"
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("WAIT-1", "main", 5)])
    again = progressed(accepted, Stage.AWAITING_ALLOCATION)
    async with pool.acquire() as cancelling, cancelling.transaction():
        await store_stock.lock_allocation_request(cancelling, accepted.order_id)
        await store.record_cancellation(cancelling, accepted.order_id, accepted.shop_id, False, datetime.now(timezone.utc), uuid4())
        allocating = asyncio.create_task(handlers.on_order_progressed(again, ctx(pool, again)))
        async with asyncio.timeout(10):
            while not await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FROM allocation_requests%'"
            ) and not allocating.done():
                await asyncio.sleep(0.01)
        assert not allocating.done()  # it holds the stock rows and waits for the request
    await asyncio.wait_for(allocating, 10)
    assert await published(pool, type="StockAllocated", order_id=accepted.order_id, causation_id=again.event_id) == []
    assert await stock(pool, "WAIT-1") == (5, 1)


async def test_a_first_allocation_that_waits_for_its_stock_rows_while_the_order_is_cancelled_allocates_nothing(pool, handlers) -> None:
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("WAIT-2", "main", 5)])
    accepted = order({"WAIT-2": 2})
    await handlers.on_order_accepted(accepted, ctx(pool, accepted))
    first = progressed(accepted, Stage.AWAITING_ALLOCATION)
    async with pool.acquire() as other, other.transaction():
        await store_stock.lock_stock_rows(other, ["WAIT-2"])  # another order's allocation holds the stock row
        allocating = asyncio.create_task(handlers.on_order_progressed(first, ctx(pool, first)))
        async with asyncio.timeout(10):
            while not await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FROM stock%'"
            ) and not allocating.done():
                await asyncio.sleep(0.01)
        assert not allocating.done()
        await store.record_cancellation(pool, accepted.order_id, accepted.shop_id, True, datetime.now(timezone.utc), uuid4())
    await asyncio.wait_for(allocating, 10)
    assert await published(pool, type="StockAllocated", order_id=accepted.order_id) == []
    assert await stock(pool, "WAIT-2") == (5, 0)
    assert await store_stock.allocated_to(pool, accepted.order_id) == {}


async def test_imported_stock_goes_to_waiting_orders_oldest_first_and_each_gets_stock_allocated(pool, handlers) -> None:
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("MATCHA", "main", 0)])
    older, newer = order({"MATCHA": 2}), order({"MATCHA": 1})
    assert await accept_and_allocate(pool, handlers, older) == "none"
    assert await accept_and_allocate(pool, handlers, newer) == "none"

    command = ImportStock(**STAFF, lines=[StockLevel(sku="MATCHA", on_hand=2)])
    await ShippingCommands().import_stock(command, ctx(pool, command))
    [topped] = await published(pool, type="StockAllocated", causation_id=command.event_id)
    assert (topped["order_id"], topped["allocation"]) == (str(older.order_id), "full")
    assert topped["correlation_id"] == str(older.correlation_id)
    assert await stock(pool, "MATCHA") == (2, 2)

    command = ImportStock(**STAFF, csv="sku,warehouse,on_hand\nMATCHA,main,5\n")
    await ShippingCommands().import_stock(command, ctx(pool, command))
    [topped] = await published(pool, type="StockAllocated", causation_id=command.event_id)
    assert (topped["order_id"], topped["allocation"]) == (str(newer.order_id), "full")
    assert await stock(pool, "MATCHA") == (5, 3)
    [reply] = await published(pool, topics.OPS_REPLIES, command_id=command.event_id)
    assert reply["details"]["allocated_orders"] == [{"order_id": str(newer.order_id), "allocation": "full"}]


async def test_a_partly_allocated_order_is_topped_up_to_full_when_stock_arrives(pool, handlers) -> None:
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("A", "main", 1), ("B", "main", 5)])
    waiting = order({"A": 3, "B": 1})
    assert await accept_and_allocate(pool, handlers, waiting) == "partial"
    command = ImportStock(**STAFF, lines=[StockLevel(sku="A", on_hand=3)])
    await ShippingCommands().import_stock(command, ctx(pool, command))
    [topped] = await published(pool, type="StockAllocated", causation_id=command.event_id)
    assert topped["allocation"] == "full"
    assert topped["lines"] == [{"sku": "A", "quantity": 3}, {"sku": "B", "quantity": 1}]
    assert await stock(pool, "A") == (3, 3)


async def test_a_partly_bad_stock_csv_changes_nothing_and_names_every_bad_line(pool, handlers) -> None:
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("MATCHA", "main", 7), ("CHAWAN", "main", 2)])
    csv = "sku,warehouse,on_hand\nMATCHA,main,9\nTYPO,main,1\nCHAWAN,main,-4\nMATCHA,main,x\n"
    command = ImportStock(**STAFF, csv=csv)
    with pytest.raises(CommandRefused) as refused:
        await ShippingCommands().import_stock(command, ctx(pool, command))
    assert refused.value.reasons == [
        "line 3: unknown sku 'TYPO'",
        "line 4: on_hand -4 is negative",
        "line 5: on_hand 'x' is not a whole number",
    ]
    assert await stock(pool, "MATCHA") == (7, 0)
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE message_id = $1", command.event_id) == 0


async def test_a_sku_seen_in_an_order_is_known_to_stock_imports(pool, handlers) -> None:
    accepted = order({"NEW-SENCHA": 1})
    await handlers.on_order_accepted(accepted, ctx(pool, accepted))
    command = ImportStock(**STAFF, lines=[StockLevel(sku="NEW-SENCHA", on_hand=4, cool_type="chilled")])
    await ShippingCommands().import_stock(command, ctx(pool, command))
    assert await stock(pool, "NEW-SENCHA") == (4, 0)
    assert await store.cool_types(pool, ["NEW-SENCHA"]) == {"NEW-SENCHA": "chilled"}


async def test_every_accepted_order_gets_a_delivery_date_check_and_a_too_early_date_is_an_error(pool, handlers) -> None:
    at = datetime(2025, 3, 19, 7, 0, tzinfo=timezone.utc)  # 16:00 JST, the day before a holiday
    plain, early = order({"A": 1}, occurred_at=at), order({"A": 1}, occurred_at=at, requested_date=date(2025, 3, 21))
    for accepted in (plain, early):
        await handlers.on_order_accepted(accepted, ctx(pool, accepted))
    [ok] = await published(pool, type="DeliveryDateChecked", order_id=plain.order_id)
    [error] = await published(pool, type="DeliveryDateChecked", order_id=early.order_id)
    assert ok["result"] == "ok" and ok["reasons"] == []
    assert (error["result"], error["earliest_ship_date"], error["earliest_delivery_date"]) == ("error", "2025-03-21", "2025-03-22")


async def test_carrier_rule_violations_are_published_one_event_each(pool, handlers) -> None:
    async with pool.acquire() as conn:
        await store.set_cool_types(conn, {"MOCHI": "frozen"})
    address = order({"A": 1}).deliveries[0].address.model_copy(update={"postal_code": "100-2101"})
    accepted = order({"MOCHI": 1}, method=PaymentMethod.CASH_ON_DELIVERY, address=address, time_slot="14-16")
    await handlers.on_order_accepted(accepted, ctx(pool, accepted))
    kinds = sorted(e["kind"] for e in await published(pool, type="LabelCheckFailed", order_id=accepted.order_id))
    assert kinds == ["cash_on_delivery_not_available", "frozen_not_available", "time_slot_not_available"]


async def ready_to_ship(pool, handlers, accepted) -> OrderProgressed:
    message = progressed(accepted, Stage.READY_TO_SHIP)
    await handlers.on_order_progressed(message, ctx(pool, message))
    return message


async def test_a_warehouse_that_keeps_timing_out_is_retried_then_the_shipment_request_fails_for_staff(pool, handlers, warehouse) -> None:
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("A", "main", 5)])
    accepted = order({"A": 1})
    assert await accept_and_allocate(pool, handlers, accepted) == "full"
    warehouse.failure = TransientError("warehouse answered 503")
    message = progressed(accepted, Stage.READY_TO_SHIP)
    for _attempt in range(2):
        with pytest.raises(TransientError):
            await handlers.on_order_progressed(message, ctx(pool, message))
    await handlers.on_order_progressed(message, ctx(pool, message))
    [failed] = await published(pool, type="ShipmentRequestFailed", order_id=accepted.order_id)
    assert (failed["attempts"], failed["reason"]) == (3, "TransientError: warehouse answered 503")
    [row] = await store_shipments.shipments_of_order(pool, accepted.order_id)
    assert row["status"] == "request_failed"


async def test_a_warehouse_refusal_fails_the_shipment_request_at_once(pool, handlers, warehouse) -> None:
    accepted = order({"A": 1})
    await handlers.on_order_accepted(accepted, ctx(pool, accepted))
    warehouse.failure = WarehouseRejected("warehouse refused the request: 400 lines must be a non-empty list")
    await ready_to_ship(pool, handlers, accepted)
    [failed] = await published(pool, type="ShipmentRequestFailed", order_id=accepted.order_id)
    assert failed["attempts"] == 1 and "400" in failed["reason"]
    assert await published(pool, type="ShipmentRequested", order_id=accepted.order_id) == []


async def test_b2_export_then_issued_labels_import_ships_each_good_line_and_rejects_the_others(pool, handlers, warehouse) -> None:
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("A", "main", 5), ("B", "main", 5)])
    accepted = order([{"A": 2}, {"B": 1}], carrier="yamato_b2", requested_date=date(2030, 1, 10), time_slot="14-16")
    assert await accept_and_allocate(pool, handlers, accepted) == "full"
    await ready_to_ship(pool, handlers, accepted)
    assert [r.report_shipped for r in warehouse.requests] == [False, False]
    first, second = [
        str(await pool.fetchval("SELECT label_no FROM shipments WHERE shipment_id = $1", shipment_id_for(accepted.order_id, i)))
        for i in (0, 1)
    ]
    assert all(len(number) <= 20 and number.isdigit() for number in (first, second))

    export = ExportLabels(**STAFF)
    await ShippingCommands().export_labels(export, ctx(pool, export))
    [reply] = await published(pool, topics.OPS_REPLIES, command_id=export.event_id)
    text = base64.b64decode(reply["details"]["content_base64"]).decode("cp932")
    rows = text.split("\r\n")
    assert rows[0].startswith("お客様管理番号,送り状種類,クール区分,伝票番号") and len(rows) == 4
    assert rows[1].startswith(f"{first},0,0,,") and ",2030/01/10,1416," in rows[1]
    assert "山田 太郎" in rows[1]

    issued = rows[0] + "\r\n" + rows[1].replace(f"{first},0,0,,", f"{first},0,0,1234-5678-9013,") + "\r\n"
    issued += f"{uuid4()},0,0,222222222223\r\n{second},0,0,123456789014\r\n"
    tracking = ImportTrackingCsv(**STAFF, csv=issued)
    await ShippingCommands().import_tracking_csv(tracking, ctx(pool, tracking))
    [reply] = await published(pool, topics.OPS_REPLIES, command_id=tracking.event_id)
    assert [(r["ok"], (r["reason"] or "")[:24]) for r in reply["results"]] == [
        (True, ""), (False, "unknown management numbe"), (False, "tracking number '1234567")
    ]
    [shipped] = await published(pool, type="ShipmentShipped", order_id=accepted.order_id)
    assert (shipped["tracking_number"], shipped["all_shipped"], shipped["lines"]) == ("123456789013", False, [{"sku": "A", "quantity": 2}])
    assert await stock(pool, "A") == (3, 0)

    old_style = shipment_id_for(accepted.order_id, 1)  # files exported before label numbers named the shipment id
    again = ImportTrackingCsv(**STAFF, csv=f"お客様管理番号,伝票番号\r\n{second},1234-5678-9013\r\n{old_style},000000000070\r\n")
    await ShippingCommands().import_tracking_csv(again, ctx(pool, again))
    [reply] = await published(pool, topics.OPS_REPLIES, command_id=again.event_id)
    assert [r["ok"] for r in reply["results"]] == [False, True]
    assert "already used by shipment" in reply["results"][0]["reason"]
    last = (await published(pool, type="ShipmentShipped", order_id=accepted.order_id))[-1]
    assert (last["tracking_number"], last["all_shipped"]) == ("000000000070", True)


async def test_a_b2_export_refuses_a_name_cp932_can_not_carry_naming_the_field_and_character(pool, handlers) -> None:
    address = order({"A": 1}).deliveries[0].address.model_copy(update={"name": "𠮷田 太郎"})
    accepted = order({"A": 1}, carrier="yamato_b2", address=address)
    await handlers.on_order_accepted(accepted, ctx(pool, accepted))
    await ready_to_ship(pool, handlers, accepted)
    export = ExportLabels(**STAFF, shipment_ids=[shipment_id_for(accepted.order_id, 0)])
    with pytest.raises(CommandRefused) as refused:
        await ShippingCommands().export_labels(export, ctx(pool, export))
    assert "お届け先名 has '𠮷'" in refused.value.reasons[0]


async def test_a_delivered_cash_on_delivery_shipment_reports_the_cash_collected(pool, handlers) -> None:
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("A", "main", 5)])
    accepted = order({"A": 1}, method=PaymentMethod.CASH_ON_DELIVERY)
    await accept_and_allocate(pool, handlers, accepted)
    await ready_to_ship(pool, handlers, accepted)
    shipment_id = shipment_id_for(accepted.order_id, 0)
    shipped = WarehouseShipmentReported(
        shipment_id=shipment_id, order_id=accepted.order_id, warehouse_request_id="wr", carrier="yamato",
        tracking_number="123456789013", shipped_at=datetime.now(timezone.utc), lines=[{"sku": "A", "quantity": 1}],
    )
    await handlers.on_warehouse_shipment_reported(shipped, ctx(pool, shipped))
    delivered = WarehouseDeliveryReported(
        shipment_id=shipment_id, order_id=accepted.order_id, warehouse_request_id="wr",
        delivered_at=datetime.now(timezone.utc), cash_collected=accepted.charges.total,
    )
    await handlers.on_delivery_reported(delivered, ctx(pool, delivered))
    [event] = await published(pool, type="ShipmentDelivered", order_id=accepted.order_id)
    assert (event["cash_collected"], event["all_delivered"]) == (accepted.charges.total, True)


async def test_a_ship_report_for_a_cancelled_shipment_is_recorded_and_flagged_and_stock_stays_right(pool, handlers) -> None:
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("A", "main", 5)])
    accepted = order({"A": 2})
    await accept_and_allocate(pool, handlers, accepted)
    await ready_to_ship(pool, handlers, accepted)
    shipment_id = shipment_id_for(accepted.order_id, 0)
    # The cancel (issue 4) releases the allocation and marks the shipment cancelled.
    await pool.execute("UPDATE shipments SET status = 'cancelled' WHERE shipment_id = $1", shipment_id)
    await pool.execute("UPDATE stock SET allocated = allocated - 2 WHERE sku = 'A'")
    await pool.execute("UPDATE allocations SET quantity = 0, released = 2 WHERE order_id = $1", accepted.order_id)
    await pool.execute(
        "INSERT INTO cancelled_orders VALUES ($1, $2, true, now(), $3)", accepted.order_id, accepted.shop_id, uuid4()
    )
    report = WarehouseShipmentReported(
        shipment_id=shipment_id, order_id=accepted.order_id, warehouse_request_id="wr", carrier="yamato",
        tracking_number="123456789013", shipped_at=datetime.now(timezone.utc), lines=[{"sku": "A", "quantity": 2}],
    )
    await handlers.on_warehouse_shipment_reported(report, ctx(pool, report))
    [row] = await store_shipments.shipments_of_order(pool, accepted.order_id)
    assert (row["status"], row["flagged"], row["tracking_number"]) == ("cancelled", "shipped_after_cancel", "123456789013")
    assert await stock(pool, "A") == (3, 0)
    assert await published(pool, type="ShipmentShipped", order_id=accepted.order_id) == []
    [failed] = await published(pool, type="ShipmentCancelFailed", order_id=accepted.order_id)
    assert (failed["shipment_id"], failed["stock_released"]) == (str(shipment_id), True)
    assert "goods left without an order" in failed["reason"] and "123456789013" in failed["reason"]


async def test_every_delivery_group_of_an_order_with_many_is_requested_once_with_the_orders_correlation(pool, handlers, warehouse) -> None:
    skus = [f"MANY-{n}" for n in range(6)]
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [(sku, "main", 5) for sku in skus])
    accepted = order([{sku: 1} for sku in skus])
    assert await accept_and_allocate(pool, handlers, accepted) == "full"
    ready = await ready_to_ship(pool, handlers, accepted)
    await handlers.on_order_progressed(ready, ctx(pool, ready))  # redelivered: nothing more
    assert sorted(request.shipment_id for request in warehouse.requests) == sorted(
        str(shipment_id_for(accepted.order_id, index)) for index in range(6)
    )
    rows = await pool.fetch("SELECT * FROM shipments WHERE order_id = $1 ORDER BY delivery_index", accepted.order_id)
    assert [(row["delivery_index"], row["status"]) for row in rows] == [(index, "requested") for index in range(6)]
    assert {row["correlation_id"] for row in rows} == {accepted.correlation_id}
    requested = await published(pool, type="ShipmentRequested", order_id=accepted.order_id)
    assert [event["delivery_index"] for event in requested] == list(range(6))


async def one_a_accepted_and_allocated(pool, warehouse: FakeWarehouse) -> tuple[ShippingHandlers, OrderAccepted]:
    """Handlers over `warehouse`, five units of A in stock, and an order of one A accepted and allocated."""
    handlers = ShippingHandlers(warehouse, max_request_attempts=3)
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("A", "main", 5)])
    accepted = order({"A": 1})
    await accept_and_allocate(pool, handlers, accepted)
    return handlers, accepted


async def shipped_before_the_answer(pool, handlers: ShippingHandlers, request: ShipmentRequest) -> None:
    """The warehouse's report that the request's one unit of A shipped (as request "wr_slow"), handled at once."""
    report = WarehouseShipmentReported(
        shipment_id=request.shipment_id, order_id=request.order_id, warehouse_request_id="wr_slow", carrier="yamato",
        tracking_number="123456789013", shipped_at=datetime.now(timezone.utc), lines=[{"sku": "A", "quantity": 1}],
    )
    await handlers.on_warehouse_shipment_reported(report, ctx(pool, report))


async def test_a_parcel_that_leaves_before_the_slow_warehouse_answers_is_not_announced_as_requested_afterwards(pool, warehouse) -> None:
    class SlowWarehouse(FakeWarehouse):
        """Ships (the callback is handled) before it answers the request."""

        async def request_shipment(self, request: ShipmentRequest) -> str:
            await shipped_before_the_answer(pool, handlers, request)
            return "wr_slow"

    handlers, accepted = await one_a_accepted_and_allocated(pool, SlowWarehouse())
    await ready_to_ship(pool, handlers, accepted)
    [shipped] = await published(pool, type="ShipmentShipped", order_id=accepted.order_id)
    assert shipped["all_shipped"] is True
    assert await published(pool, type="ShipmentRequested", order_id=accepted.order_id) == []
    [row] = await store_shipments.shipments_of_order(pool, accepted.order_id)
    assert (row["status"], row["warehouse_request_id"]) == ("shipped", "wr_slow")
    assert await stock(pool, "A") == (4, 0)


async def test_a_group_that_leaves_before_the_slow_warehouse_answers_leaves_the_other_groups_announced_as_requested(pool) -> None:
    class SlowForTheFirstGroup(FakeWarehouse):
        """Ships the first group's parcel (the callback is handled) before it answers that request."""

        async def request_shipment(self, request: ShipmentRequest) -> str:
            if request.lines == [{"sku": "A", "quantity": 1}]:
                await shipped_before_the_answer(pool, handlers, request)
                return "wr_slow"
            return "wr_b"

    handlers = ShippingHandlers(SlowForTheFirstGroup(), max_request_attempts=3)
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("A", "main", 5), ("B", "main", 5)])
    accepted = order([{"A": 1}, {"B": 1}])
    await accept_and_allocate(pool, handlers, accepted)
    ready = await ready_to_ship(pool, handlers, accepted)
    [requested] = await published(pool, type="ShipmentRequested", order_id=accepted.order_id)
    assert (requested["delivery_index"], requested["warehouse_request_id"]) == (1, "wr_b")
    rows = await store_shipments.shipments_of_order(pool, accepted.order_id)
    assert [(row["status"], row["warehouse_request_id"]) for row in rows] == [("shipped", "wr_slow"), ("requested", "wr_b")]
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE message_id = $1", ready.event_id) == 1


async def test_a_ready_to_ship_message_the_inbox_took_while_the_warehouse_was_asked_is_a_duplicate_that_changes_nothing(pool) -> None:
    class TakenMeanwhile(FakeWarehouse):
        """Another delivery of the message is handled while this one asks the warehouse."""

        async def request_shipment(self, request: ShipmentRequest) -> str:
            await pool.execute("INSERT INTO inbox (message_id, topic) VALUES ($1, 'test')", message.event_id)
            return "wr_1"

    handlers, accepted = await one_a_accepted_and_allocated(pool, TakenMeanwhile())
    message = progressed(accepted, Stage.READY_TO_SHIP)
    with pytest.raises(DuplicateMessage):
        await handlers.on_order_progressed(message, ctx(pool, message))
    [row] = await store_shipments.shipments_of_order(pool, accepted.order_id)
    assert (row["status"], row["warehouse_request_id"]) == ("requesting", None)
    assert await published(pool, type="ShipmentRequested", order_id=accepted.order_id) == []
