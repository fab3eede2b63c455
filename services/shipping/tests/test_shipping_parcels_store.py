"""Parcels on a real PostgreSQL: a delivery group leaving in several parcels is partly shipped, then shipped; each
parcel is booked once (by tracking number), takes its units out of stock once, and is announced with what it
carries; parcels the shipment can't hold are refused and change nothing; a partly shipped delivery is neither
cancelled at the warehouse nor edited; the tracking CSV ships what is left; shipments that left before parcels were
kept become one parcel."""

import json
from datetime import datetime, timezone
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import ordermesh_shipping
import pytest
from ordermesh_contracts import (
    DeliveryGroup,
    ImportTrackingCsv,
    LineDiff,
    OrderAccepted,
    OrderCancelled,
    OrderEdited,
    OrderLine,
    OrderProgressed,
    Payment,
    PaymentMethod,
    ShippedLine,
    ShippingCallback,
    Stage,
    WarehouseDeliveryReported,
    WarehouseShipmentReported,
    topics,
)
from ordermesh_servicekit.consuming import Consumer, MessageContext, PermanentError, Subscription
from ordermesh_servicekit.metrics import Metrics
from ordermesh_servicekit.migrations import apply_migrations, migrate_service, read_migrations
from ordermesh_shipping import store_shipments, store_stock
from ordermesh_shipping.adapters.warehouse import ShipmentRequest
from ordermesh_shipping.commands import ShippingCommands
from ordermesh_shipping.domain.allocation import shipment_id_for
from ordermesh_shipping.handlers import BATCH_SHIPMENTS, ShippingHandlers
from doubles import FakeRecord

GOLDEN = Path(__file__).resolve().parents[3] / "contracts" / "tests" / "golden"


class Warehouse:
    """Takes shipment requests and cancels, remembering the cancels."""

    def __init__(self) -> None:
        self.cancels: list[str] = []

    async def request_shipment(self, request: ShipmentRequest) -> str:
        return f"wr_{request.shipment_id[:8]}"

    async def cancel_shipment(self, request_id: str) -> None:
        self.cancels.append(request_id)


@pytest.fixture
def warehouse() -> Warehouse:
    return Warehouse()


@pytest.fixture
def handlers(warehouse) -> ShippingHandlers:
    return ShippingHandlers(warehouse, max_request_attempts=3)


def ctx(pool, message) -> MessageContext:
    return MessageContext(pool, message.event_id, "test", log=None)


def order(*groups: dict[str, int], carrier: str = "yamato") -> OrderAccepted:
    golden = OrderAccepted.model_validate(json.loads((GOLDEN / "OrderAccepted.json").read_text("utf-8")))
    deliveries = [
        DeliveryGroup(
            address=golden.deliveries[0].address,
            carrier=carrier,
            lines=[OrderLine(sku=sku, name=f"品 {sku}", unit_price=1000, quantity=qty, tax_rate_percent=10) for sku, qty in group.items()],
        )
        for group in groups
    ]
    return golden.model_copy(update={
        "event_id": uuid4(), "order_id": uuid4(), "deliveries": deliveries,
        "payment": Payment(method=PaymentMethod.CARD, card_token="tok"), "occurred_at": datetime.now(timezone.utc),
    })


async def until_requested(pool, handlers, accepted: OrderAccepted, **stock: int) -> None:
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [(sku, "main", units) for sku, units in stock.items()])
    await handlers.on_order_accepted(accepted, ctx(pool, accepted))
    for stage in (Stage.AWAITING_ALLOCATION, Stage.READY_TO_SHIP):
        step = OrderProgressed(
            order_id=accepted.order_id, shop_id=accepted.shop_id, from_stage=Stage.AWAITING_PAYMENT, to_stage=stage,
            correlation_id=accepted.correlation_id,
        )
        await handlers.on_order_progressed(step, ctx(pool, step))


def parcel(accepted: OrderAccepted, tracking_number: str, index: int = 0, **lines: int) -> WarehouseShipmentReported:
    return WarehouseShipmentReported(
        shipment_id=shipment_id_for(accepted.order_id, index), order_id=accepted.order_id, warehouse_request_id="wr",
        carrier="yamato", tracking_number=tracking_number, shipped_at=datetime.now(timezone.utc),
        lines=[ShippedLine(sku=sku, quantity=units) for sku, units in lines.items()],
    )


async def report(pool, handlers, *reports: WarehouseShipmentReported) -> None:
    for message in reports:
        await handlers.on_warehouse_shipment_reported(message, ctx(pool, message))


async def shipped_events(pool, order_id) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.SHIPPING_EVENTS)
    events = [json.loads(row["payload"]) for row in rows]
    return [e for e in events if e["type"] == "ShipmentShipped" and e["order_id"] == str(order_id)]


async def published(pool, order_id, type_: str, topic: str = topics.SHIPPING_EVENTS) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topic)
    events = [json.loads(row["payload"]) for row in rows]
    return [e for e in events if e.get("type") == type_ and e.get("order_id") == str(order_id)]


async def stock(pool, sku) -> tuple[int, int]:
    row = await pool.fetchrow("SELECT on_hand, allocated FROM stock WHERE sku = $1 AND warehouse = 'main'", sku)
    return row["on_hand"], row["allocated"]


async def status(pool, accepted, index: int = 0) -> str:
    return await pool.fetchval("SELECT status FROM shipments WHERE shipment_id = $1", shipment_id_for(accepted.order_id, index))


async def parcels(pool, order_id) -> list[tuple[str, dict]]:
    async with pool.acquire() as conn:
        return [(row["tracking_number"], json.loads(row["lines"])) for row in await store_shipments.parcels_of_order(conn, order_id)]


async def test_a_delivery_group_in_two_parcels_is_partly_shipped_then_shipped_and_each_unit_leaves_stock_once(pool, handlers) -> None:
    accepted = order({"A": 3, "B": 1})
    await until_requested(pool, handlers, accepted, A=5, B=2)
    first = parcel(accepted, "123456789013", A=2, B=1)
    await report(pool, handlers, first)
    assert await status(pool, accepted) == "partly_shipped"
    assert (await stock(pool, "A"), await stock(pool, "B")) == ((3, 1), (1, 0))

    await report(pool, handlers, first.model_copy(update={"event_id": uuid4()}))
    assert (await stock(pool, "A"), await stock(pool, "B")) == ((3, 1), (1, 0))
    assert len(await shipped_events(pool, accepted.order_id)) == 1

    await report(pool, handlers, parcel(accepted, "123456789024", A=1))
    assert await status(pool, accepted) == "shipped"
    assert (await stock(pool, "A"), await stock(pool, "B")) == ((2, 0), (1, 0))
    events = await shipped_events(pool, accepted.order_id)
    assert [(e["tracking_number"], e["lines"], e["all_shipped"]) for e in events] == [
        ("123456789013", [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}], False),
        ("123456789024", [{"sku": "A", "quantity": 1}], True),
    ]
    assert await parcels(pool, accepted.order_id) == [("123456789013", {"A": 2, "B": 1}), ("123456789024", {"A": 1})]
    row = await pool.fetchrow("SELECT tracking_number FROM shipments WHERE order_id = $1", accepted.order_id)
    assert row["tracking_number"] == "123456789013"


def callbacks(pool, handlers) -> Consumer:
    """Shipping's consumer of warehouse callbacks as the app wires it: batched, its shipments preloaded."""
    subscription = Subscription(
        topics.SHIPPING_CALLBACKS, ShippingCallback,
        {WarehouseShipmentReported: handlers.on_warehouse_shipment_reported, WarehouseDeliveryReported: handlers.on_delivery_reported},
        batched=True, **BATCH_SHIPMENTS,
    )
    return Consumer(subscription, group_id="ordermesh-shipping", pool_provider=lambda: pool, metrics=Metrics("shipping"), retry_max_seconds=0.2)


def as_records(*reports: WarehouseShipmentReported) -> list[FakeRecord]:
    return [
        FakeRecord(topics.SHIPPING_CALLBACKS, 0, offset, str(report.order_id).encode(), report.model_dump_json().encode(), [("type", report.type.encode())])
        for offset, report in enumerate(reports)
    ]


async def test_two_parcels_of_a_delivery_group_in_one_batch_ship_it_as_one_at_a_time_would(pool, handlers) -> None:
    accepted = order({"A": 3, "B": 1})
    await until_requested(pool, handlers, accepted, A=5, B=2)
    await callbacks(pool, handlers).process(as_records(parcel(accepted, "223456789013", A=2, B=1), parcel(accepted, "223456789024", A=1)))
    assert await status(pool, accepted) == "shipped"
    assert (await stock(pool, "A"), await stock(pool, "B")) == ((2, 0), (1, 0))
    events = await shipped_events(pool, accepted.order_id)
    assert [(e["tracking_number"], e["all_shipped"]) for e in events] == [("223456789013", False), ("223456789024", True)]


def delivered(accepted: OrderAccepted, index: int = 0) -> WarehouseDeliveryReported:
    return WarehouseDeliveryReported(
        shipment_id=shipment_id_for(accepted.order_id, index), order_id=accepted.order_id, warehouse_request_id="wr",
        delivered_at=datetime.now(timezone.utc),
    )


async def reports_story(pool, handlers, world: int) -> tuple[list, dict]:
    """An order of two delivery groups, one in two parcels, both delivered; an order whose parcel is reported twice,
    then delivered; an order cancelled (its shipment too) whose parcel left anyway. The reports, grouped by order as a
    batch handles them, and the orders by role."""
    a, b = f"W{world}-A", f"W{world}-B"
    two, once, cancelled = order({a: 2}, {b: 3}), order({a: 1}), order({b: 1})
    for accepted in (two, once, cancelled):
        await until_requested(pool, handlers, accepted, **{a: 10, b: 10})
    shipment_id = shipment_id_for(cancelled.order_id, 0)
    await pool.execute("UPDATE shipments SET status = 'cancelled' WHERE shipment_id = $1", shipment_id)
    await pool.execute("UPDATE stock SET allocated = allocated - 1 WHERE sku = $1", b)
    await pool.execute("UPDATE allocations SET quantity = 0, released = 1 WHERE order_id = $1", cancelled.order_id)
    await pool.execute("INSERT INTO cancelled_orders VALUES ($1, $2, true, now(), $3)", cancelled.order_id, cancelled.shop_id, uuid4())
    twice = parcel(once, f"4{world}0000000004", **{a: 1})
    reports = [
        parcel(two, f"4{world}0000000001", 0, **{a: 2}), parcel(two, f"4{world}0000000002", 1, **{b: 1}),
        parcel(two, f"4{world}0000000003", 1, **{b: 2}), delivered(two, 0), delivered(two, 1),
        twice, twice.model_copy(update={"event_id": uuid4()}), delivered(once),
        parcel(cancelled, f"4{world}0000000005", **{b: 1}),
    ]
    return reports, {two.order_id: "two", once.order_id: "once", cancelled.order_id: "cancelled"}


async def reports_outcome(pool, world: int, roles: dict) -> dict:
    """The world's shipments, parcels, stock and announcements, its orders by role, its skus and tracking numbers
    without the world's marks."""
    def plain(text: str) -> str:
        return text.replace(f"W{world}-", "").replace(f"4{world}000", "4000")

    ids = list(roles)
    shipments = await pool.fetch(
        "SELECT order_id, delivery_index, status, carrier, tracking_number, shipped_at IS NOT NULL AS shipped,"
        " delivered_at IS NOT NULL AS delivered, cash_collected, flagged, cancel_error FROM shipments WHERE order_id = ANY($1::uuid[])",
        ids,
    )
    lines = await pool.fetch(
        "SELECT p.order_id, p.tracking_number, p.carrier, l.sku, l.quantity FROM parcels p JOIN parcel_lines l USING (shipment_id, tracking_number)"
        " WHERE p.order_id = ANY($1::uuid[])", ids,
    )
    stock = await pool.fetch("SELECT sku, on_hand, allocated FROM stock WHERE sku LIKE $1", f"W{world}-%")
    allocations = await pool.fetch("SELECT order_id, sku, quantity, released FROM allocations WHERE order_id = ANY($1::uuid[])", ids)
    events = [json.loads(row["payload"]) for row in await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.SHIPPING_EVENTS)]
    return {
        "shipments": sorted(
            (roles[r["order_id"]], r["delivery_index"], r["status"], r["carrier"], plain(r["tracking_number"] or ""), r["shipped"],
             r["delivered"], r["cash_collected"], r["flagged"], plain(r["cancel_error"] or ""))
            for r in shipments
        ),
        "parcels": sorted((roles[r["order_id"]], plain(r["tracking_number"]), r["carrier"], plain(r["sku"]), r["quantity"]) for r in lines),
        "stock": sorted((plain(r["sku"]), r["on_hand"], r["allocated"]) for r in stock),
        "allocations": sorted((roles[r["order_id"]], plain(r["sku"]), r["quantity"], r["released"]) for r in allocations),
        "announced": [
            (e["type"], roles[UUID(e["order_id"])], e.get("delivery_index"), plain(e.get("tracking_number") or ""),
             e.get("all_shipped"), e.get("all_delivered"), e.get("stock_released"), [(plain(x["sku"]), x["quantity"]) for x in e.get("lines", [])])
            for e in events
            if UUID(e["order_id"]) in roles and e["type"] in ("ShipmentShipped", "ShipmentDelivered", "ShipmentCancelFailed")
        ],
    }


async def test_a_batch_of_parcels_and_deliveries_ends_exactly_as_its_reports_one_at_a_time(pool, handlers) -> None:
    alone, alone_roles = await reports_story(pool, handlers, 1)
    for message in alone:
        handle = handlers.on_delivery_reported if isinstance(message, WarehouseDeliveryReported) else handlers.on_warehouse_shipment_reported
        await handle(message, ctx(pool, message))
    batched, batched_roles = await reports_story(pool, handlers, 2)
    await callbacks(pool, handlers).process(as_records(*batched))
    # every report handled, all in the batch's one transaction (none undone and handled again one at a time)
    assert await pool.fetchrow(
        "SELECT count(*), count(DISTINCT xmin::text) FROM inbox WHERE message_id = ANY($1::uuid[])", [m.event_id for m in batched]
    ) == (len(batched), 1)
    one_at_a_time, in_one_batch = await reports_outcome(pool, 1, alone_roles), await reports_outcome(pool, 2, batched_roles)
    assert in_one_batch == one_at_a_time
    announced = [(kind, role, all_delivered) for kind, role, _, _, _, all_delivered, _, _ in in_one_batch["announced"]]
    assert announced == [
        ("ShipmentShipped", "two", None), ("ShipmentShipped", "two", None), ("ShipmentShipped", "two", None),
        ("ShipmentDelivered", "two", False), ("ShipmentDelivered", "two", True),
        ("ShipmentShipped", "once", None), ("ShipmentDelivered", "once", True), ("ShipmentCancelFailed", "cancelled", None),
    ]
    assert ("B", 10 - 3 - 1, 0) in in_one_batch["stock"]


async def test_a_tracking_number_two_orders_report_in_one_batch_is_booked_for_the_first_and_dead_letters_the_second(pool, handlers) -> None:
    first, second = order({"A": 1}), order({"A": 1})
    await until_requested(pool, handlers, first, A=5)
    await until_requested(pool, handlers, second, A=5)
    await callbacks(pool, handlers).process(as_records(parcel(first, "323456789013", A=1), parcel(second, "323456789013", A=1)))
    assert (await status(pool, first), await status(pool, second)) == ("shipped", "requested")
    assert await stock(pool, "A") == (4, 1)
    dead = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1", f"{topics.SHIPPING_CALLBACKS}.dlq")
    assert [json.loads(row["payload"])["order_id"] for row in dead] == [str(second.order_id)]


async def test_all_shipped_waits_for_the_last_unit_of_every_delivery_group(pool, handlers) -> None:
    accepted = order({"A": 2}, {"B": 1})
    await until_requested(pool, handlers, accepted, A=5, B=5)
    await report(pool, handlers, parcel(accepted, "123456789013", 1, B=1), parcel(accepted, "123456789024", A=1))
    await report(pool, handlers, parcel(accepted, "123456789035", A=1))
    events = await shipped_events(pool, accepted.order_id)
    assert [(e["delivery_index"], e["all_shipped"]) for e in events] == [(1, False), (0, False), (0, True)]


async def test_a_parcel_the_shipment_can_not_hold_is_refused_and_changes_nothing(pool, handlers) -> None:
    accepted = order({"A": 3})
    other = order({"A": 1})
    await until_requested(pool, handlers, accepted, A=10)
    await until_requested(pool, handlers, other)
    await report(pool, handlers, parcel(accepted, "123456789013", A=2), parcel(other, "123456789046", A=1))
    before = await stock(pool, "A")
    refusals = [
        (parcel(accepted, "123456789024", A=2), "A: 2 in the parcel, 1 unshipped"),
        (parcel(accepted, "123456789024", A=1, Z=1), "Z: 1 in the parcel, 0 unshipped"),
        (parcel(accepted, "123456789024", A=0), "carries no units"),
        (parcel(accepted, "123456789046", A=1), "already used by a parcel of shipment"),
    ]
    for message, reason in refusals:
        with pytest.raises(PermanentError, match=reason):
            await report(pool, handlers, message)
    assert await stock(pool, "A") == before == (7, 1)
    assert await status(pool, accepted) == "partly_shipped"
    assert await parcels(pool, accepted.order_id) == [("123456789013", {"A": 2})]
    assert len(await shipped_events(pool, accepted.order_id)) == 1

    await report(pool, handlers, parcel(accepted, "123456789024", A=1))
    with pytest.raises(PermanentError, match="A: 1 in the parcel, 0 unshipped"):
        await report(pool, handlers, parcel(accepted, "123456789035", A=1))
    assert await stock(pool, "A") == (6, 0)


async def test_a_partly_shipped_delivery_is_not_cancelled_at_the_warehouse_and_its_last_parcel_still_ships(pool, handlers, warehouse) -> None:
    accepted = order({"A": 3}, {"B": 2})
    await until_requested(pool, handlers, accepted, A=5, B=5)
    await report(pool, handlers, parcel(accepted, "123456789013", A=2))
    cancelled = OrderCancelled(
        order_id=accepted.order_id, shop_id=accepted.shop_id, external_order_no=accepted.external_order_no,
        customer_id=accepted.customer.customer_id, reason="customer cancelled by phone", restore_stock=True,
        cancel_payment=True, notify_customer=False, cancelled_by="staff:test", correlation_id=accepted.correlation_id,
    )
    await handlers.on_order_cancelled(cancelled, ctx(pool, cancelled))
    [failed] = await published(pool, accepted.order_id, "ShipmentCancelFailed")
    assert (failed["delivery_index"], failed["reason"]) == (0, "shipment already partly shipped")
    assert warehouse.cancels == [f"wr_{str(shipment_id_for(accepted.order_id, 1))[:8]}"]
    assert (await status(pool, accepted, 0), await status(pool, accepted, 1)) == ("partly_shipped", "cancelled")
    assert (await stock(pool, "A"), await stock(pool, "B")) == ((3, 1), (5, 0))

    await report(pool, handlers, parcel(accepted, "123456789024", A=1))
    assert await status(pool, accepted) == "shipped"
    assert await stock(pool, "A") == (2, 0)
    [*_, last] = await shipped_events(pool, accepted.order_id)
    assert (last["lines"], last["all_shipped"]) == ([{"sku": "A", "quantity": 1}], True)


async def test_an_edit_of_a_partly_shipped_delivery_is_refused_and_stock_stays(pool, handlers) -> None:
    accepted = order({"A": 3})
    await until_requested(pool, handlers, accepted, A=5)
    await report(pool, handlers, parcel(accepted, "123456789013", A=2))
    template = accepted.deliveries[0].lines[0]
    edit = OrderEdited(
        order_id=accepted.order_id, shop_id=accepted.shop_id, edit_no=1, external_order_no=accepted.external_order_no,
        customer=accepted.customer, currency=accepted.currency, payment=accepted.payment,
        changes=[LineDiff(delivery_index=0, sku="A", change="changed", previous_quantity=3, quantity=2, unit_price=1000,
                          previous_line_discount=0, line_discount=0)],
        deliveries=[accepted.deliveries[0].model_copy(update={"lines": [template.model_copy(update={"quantity": 2})]})],
        previous_charges=accepted.charges, charges=accepted.charges, merchandise_total=accepted.merchandise_total,
        paid=0, balance=0, adjust_stock=True, notify_customer=False, reason="test", edited_by="staff:test",
        correlation_id=accepted.correlation_id,
    )
    await handlers.on_order_edited(edit, ctx(pool, edit))
    [refused] = await published(pool, accepted.order_id, "ShippingEditRefused")
    assert refused["reason"] == "delivery 0 already partly shipped"
    assert await published(pool, accepted.order_id, "ShippingEditApplied") == []
    assert await stock(pool, "A") == (3, 1)
    assert await pool.fetchval("SELECT quantity FROM order_lines WHERE order_id = $1", accepted.order_id) == 3


async def test_a_tracking_csv_line_for_a_partly_shipped_shipment_ships_what_is_left_as_one_parcel(pool, handlers) -> None:
    accepted = order({"A": 3}, carrier="yamato_b2")
    await until_requested(pool, handlers, accepted, A=5)
    await report(pool, handlers, parcel(accepted, "123456789013", A=1))
    shipment_id = shipment_id_for(accepted.order_id, 0)
    csv = f"お客様管理番号,伝票番号\r\n{shipment_id},000000000070\r\n{shipment_id},000000000070\r\n"
    command = ImportTrackingCsv(shop_id=accepted.shop_id, issued_by="staff:test", csv=csv)
    await ShippingCommands().import_tracking_csv(command, ctx(pool, command))
    [reply] = [e for e in await published_replies(pool) if e["command_id"] == str(command.event_id)]
    assert [(r["ok"], r["reason"]) for r in reply["results"]] == [(True, None), (True, "already shipped with this number")]
    assert await status(pool, accepted) == "shipped"
    assert await stock(pool, "A") == (2, 0)
    [*_, last] = await shipped_events(pool, accepted.order_id)
    assert (last["tracking_number"], last["lines"], last["all_shipped"]) == ("000000000070", [{"sku": "A", "quantity": 2}], True)


async def published_replies(pool) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.OPS_REPLIES)
    return [json.loads(row["payload"]) for row in rows]


async def test_shipments_that_left_before_parcels_were_kept_become_one_parcel_of_their_lines(fresh_database) -> None:
    directory = Path(ordermesh_shipping.__file__).parent / "migrations"
    order_id, shipped, waiting = uuid4(), uuid4(), uuid4()
    conn = await asyncpg.connect(fresh_database)
    try:
        await apply_migrations(conn, [m for m in read_migrations("shipping", directory) if m.version < 4])
        await conn.executemany(
            "INSERT INTO order_lines (order_id, shop_id, delivery_index, sku, quantity, carrier) VALUES ($1, 's', $2, $3, $4, 'yamato')",
            [(order_id, 0, "A", 2), (order_id, 0, "B", 1), (order_id, 1, "C", 4)],
        )
        await conn.execute(
            """
            INSERT INTO shipments (shipment_id, order_id, delivery_index, status, carrier, tracking_number, shipped_at)
            VALUES ($1, $3, 0, 'delivered', 'yamato', '123456789013', now()), ($2, $3, 1, 'requested', 'yamato', NULL, NULL)
            """,
            shipped, waiting, order_id,
        )
        await migrate_service(conn, "shipping", directory)
        rows = await store_shipments.parcels_of_order(conn, order_id)
        assert [(r["shipment_id"], r["tracking_number"], json.loads(r["lines"])) for r in rows] == [
            (shipped, "123456789013", {"A": 2, "B": 1})
        ]
        assert await store_shipments.order_shipped_units(conn, order_id) == {"A": 2, "B": 1}
    finally:
        await conn.close()
