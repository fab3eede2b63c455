"""What one message costs the shipping database: statements and transactions per handled message type of a card order,
counted on a real PostgreSQL through a query logger on every pooled connection (a budget that cannot silently grow)."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from ordermesh_contracts import (
    OrderAccepted,
    OrderProgressed,
    OrdersEvent,
    ShippingCallback,
    Stage,
    WarehouseDeliveryReported,
    WarehouseShipmentReported,
    topics,
)
from ordermesh_servicekit.consuming import Consumer, MessageContext, Subscription
from ordermesh_servicekit.http import asgi_endpoint
from ordermesh_servicekit.metrics import Metrics
from ordermesh_servicekit.signing import sign
from ordermesh_shipping import store_stock
from ordermesh_shipping.adapters.ingress import ShipmentOrigins, warehouse_callback
from ordermesh_shipping.adapters.warehouse import ShipmentRequest
from ordermesh_shipping.domain.allocation import shipment_id_for
from ordermesh_shipping.handlers import BATCH_ORDERS, BATCH_SHIPMENTS, ShippingHandlers, calls_the_warehouse
from support import counted_pool, golden_message, statements_of
from doubles import FakeRecord, StatementCounter


class Warehouse:
    """Takes every shipment request."""

    def __init__(self) -> None:
        self.requests: list[ShipmentRequest] = []

    async def request_shipment(self, request: ShipmentRequest) -> str:
        self.requests.append(request)
        return f"wr_{request.shipment_id[:8]}"


@pytest.fixture
async def counted(fresh_database: str) -> AsyncIterator[tuple[asyncpg.Pool, StatementCounter]]:
    async with counted_pool(fresh_database, "shipping") as (pool, counter):
        async with pool.acquire() as conn:
            await store_stock.set_stock(conn, [("MATCHA-UJI-40G", "main", 1000), ("CHAWAN-KIYOMIZU", "main", 1000)])
        yield pool, counter


async def a_whole_order(pool, handlers: ShippingHandlers) -> None:
    accepted = OrderAccepted.model_validate(golden_message("OrderAccepted", order_id=str(uuid4())))
    await handlers.on_order_accepted(accepted, MessageContext(pool, accepted.event_id, "test", log=None))
    for stage in (Stage.AWAITING_ALLOCATION, Stage.READY_TO_SHIP):
        message = progressed(accepted.order_id, stage)
        await handlers.on_order_progressed(message, MessageContext(pool, message.event_id, "test", log=None))


def progressed(order_id, to_stage: Stage) -> OrderProgressed:
    return OrderProgressed.model_validate(golden_message("OrderProgressed", order_id=str(order_id), to_stage=to_stage.value))


async def test_a_card_order_costs_the_shipping_database_a_bounded_number_of_statements_per_message(counted) -> None:
    pool, counter = counted
    handlers = ShippingHandlers(Warehouse())
    await a_whole_order(pool, handlers)  # a connection's first use of an array type looks the type up (3 statements)
    accepted = OrderAccepted.model_validate(golden_message("OrderAccepted", order_id=str(uuid4())))
    costs = {
        "OrderAccepted": await statements_of(pool, counter, handlers.on_order_accepted, accepted),
        "to awaiting_payment (skip)": await statements_of(pool, counter, handlers.on_order_progressed, progressed(accepted.order_id, Stage.AWAITING_PAYMENT)),
        "to awaiting_allocation": await statements_of(pool, counter, handlers.on_order_progressed, progressed(accepted.order_id, Stage.AWAITING_ALLOCATION)),
    }
    ready = progressed(accepted.order_id, Stage.READY_TO_SHIP)
    costs["to ready_to_ship"] = await statements_of(pool, counter, handlers.on_order_progressed, ready)
    costs["redelivered ready_to_ship"] = await statements_of(pool, counter, handlers.on_order_progressed, ready)
    shipped = WarehouseShipmentReported.model_validate(golden_message(
        "WarehouseShipmentReported", order_id=str(accepted.order_id), shipment_id=str(shipment_id_for(accepted.order_id, 0)),
    ))
    costs["WarehouseShipmentReported"] = await statements_of(pool, counter, handlers.on_warehouse_shipment_reported, shipped)
    assert await pool.fetchval("SELECT coverage FROM allocation_requests WHERE order_id = $1", accepted.order_id) == "full"
    assert await pool.fetchval("SELECT status FROM shipments WHERE order_id = $1", accepted.order_id) == "shipped"
    delivered = WarehouseDeliveryReported.model_validate(golden_message(
        "WarehouseDeliveryReported", order_id=str(accepted.order_id), shipment_id=str(shipment_id_for(accepted.order_id, 0)),
    ))
    costs["WarehouseDeliveryReported"] = await statements_of(pool, counter, handlers.on_delivery_reported, delivered)
    assert await pool.fetchval("SELECT status FROM shipments WHERE order_id = $1", accepted.order_id) == "delivered"
    assert await pool.fetchval(
        "SELECT convert_from(payload, 'UTF8')::jsonb->>'all_delivered' FROM outbox"
        " WHERE convert_from(payload, 'UTF8')::jsonb->>'type' = 'ShipmentDelivered'"
    ) == "true"
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 3 + 5
    print("\ncost (statements, transactions):", costs)
    statements = {name: count for name, (count, _) in costs.items()}
    transactions = {name: count for name, (_, count) in costs.items()}
    assert transactions == {
        "OrderAccepted": 1, "to awaiting_payment (skip)": 0, "to awaiting_allocation": 1, "to ready_to_ship": 2,
        "redelivered ready_to_ship": 1, "WarehouseShipmentReported": 1, "WarehouseDeliveryReported": 1,
    }, transactions
    # The unit of work writes the inbox row with the outbox rows, in one statement at its end (servicekit).
    # BEGIN, what the checks read (shop calendar, cool types, confirmed checks), deliveries with their holds and lines
    # in one statement, inbox with outbox, COMMIT; 6 -> 5 (deliveries and lines written apart; it was 10 before that)
    assert statements["OrderAccepted"] <= 5, statements
    # BEGIN, demand with its stock rows then its allocation request locked, allocations with stock and request (unless
    # cancelled), inbox with outbox, COMMIT; 6 -> 5 (cancelled? with what the order holds read apart, which an order
    # never allocated needs not: it holds nothing); 7 before that (the request locked apart; 12 before that)
    assert statements["to awaiting_allocation"] <= 5, statements
    # the inbox checked with the groups read and the intent recorded (every shipment, no BEGIN/COMMIT); the warehouse
    # asked; the answers: every shipment marked, inbox with outbox, one statement (no BEGIN/COMMIT). 6 -> 3 -> 2 (the
    # answers BEGIN, every shipment marked, inbox with outbox, COMMIT; the intent a statement of its own); 9 before
    # that (the inbox checked apart, the intent a BEGIN…COMMIT of two), 14 in 4 transactions before that.
    assert statements["to ready_to_ship"] <= 2, statements
    # BEGIN, the shipment locked, what booking its parcel reads, the parcel booked (with its lines, the shipment's
    # status and the stock), inbox with outbox, COMMIT; it was 16 (each read and write apart, the lines read twice)
    assert statements["WarehouseShipmentReported"] <= 6, statements
    # BEGIN, the shipment locked, the delivery recorded reading the shop and the other undelivered shipments, inbox with
    # outbox, COMMIT; 7 -> 5 (the order's lines and the undelivered count read apart)
    assert statements["WarehouseDeliveryReported"] <= 5, statements
    assert statements["to awaiting_payment (skip)"] == 0 and statements["redelivered ready_to_ship"] == 1, statements


async def test_a_contract_shipping_does_not_handle_costs_no_statement(counted) -> None:
    pool, counter = counted
    handlers = ShippingHandlers(Warehouse())
    subscription = Subscription(topics.ORDERS_EVENTS, OrdersEvent, {OrderAccepted: handlers.on_order_accepted})
    consumer = Consumer(subscription, group_id="ordermesh-shipping", pool_provider=lambda: pool, metrics=Metrics("shipping"), retry_max_seconds=0.2)
    completed = golden_message("OrderCompleted")
    await asyncio.sleep(0)
    counter.reset()
    await consumer.process([FakeRecord(topics.ORDERS_EVENTS, 0, 0, b"o", json.dumps(completed).encode(), [("type", b"OrderCompleted")])])
    await asyncio.sleep(0)
    assert (len(counter.statements), counter.transactions) == (0, 0), counter.statements


def orders_events(handlers: ShippingHandlers) -> Subscription:
    """Shipping's subscription to orders events, as the app wires it."""
    return Subscription(
        topics.ORDERS_EVENTS, OrdersEvent,
        {OrderAccepted: handlers.on_order_accepted, OrderProgressed: handlers.on_order_progressed},
        batched=True, alone=calls_the_warehouse, **BATCH_ORDERS,
    )


def as_record(message, offset: int) -> FakeRecord:
    key = str(message.order_id).encode()
    return FakeRecord(topics.ORDERS_EVENTS, 0, offset, key, message.model_dump_json().encode(), [("type", message.type.encode())])


def card_orders(count: int) -> tuple[list[OrderAccepted], list[FakeRecord]]:
    """Orders accepted, then awaiting allocation, then ready to ship, as records on the orders topic."""
    orders = [OrderAccepted.model_validate(golden_message("OrderAccepted", order_id=str(uuid4()))) for _ in range(count)]
    messages = [
        message
        for accepted in orders
        for message in (accepted, progressed(accepted.order_id, Stage.AWAITING_ALLOCATION), progressed(accepted.order_id, Stage.READY_TO_SHIP))
    ]
    return orders, [as_record(message, offset) for offset, message in enumerate(messages)]


async def test_acceptance_and_allocation_of_many_orders_share_one_transaction_and_each_shipment_request_goes_alone(counted) -> None:
    pool, counter = counted
    warehouse = Warehouse()
    consumer = Consumer(orders_events(ShippingHandlers(warehouse)), group_id="ordermesh-shipping", pool_provider=lambda: pool, metrics=Metrics("shipping"), retry_max_seconds=0.2)
    await consumer.process(card_orders(1)[1])  # a connection's first use of an array type looks the type up
    orders, records = card_orders(8)
    await asyncio.sleep(0)
    counter.reset()
    await consumer.process(records)
    await asyncio.sleep(0)
    statements, transactions = len(counter.statements), counter.transactions
    order_ids = [accepted.order_id for accepted in orders]
    coverage = await pool.fetch("SELECT coverage FROM allocation_requests WHERE order_id = ANY($1::uuid[])", order_ids)
    assert [row["coverage"] for row in coverage] == ["full"] * 8
    shipments = await pool.fetch("SELECT status FROM shipments WHERE order_id = ANY($1::uuid[])", order_ids)
    assert [row["status"] for row in shipments] == ["requested"] * 8 and len(warehouse.requests) == 1 + 8
    print(f"\n8 orders accepted, allocated, ready to ship: {statements} statements, {transactions} transactions")
    assert transactions == 1 + 8 * 2  # the batch; then per order the request's two (see the card order's costs)
    # the batch: BEGIN, the inbox rows written with what every accepted order's checks read, the stock of every order
    # it allocates locked, every acceptance and allocation saved with the outbox rows, COMMIT; then per order the
    # request's two. 4 + 8 * 1 + 8 * 2 + 8 * 2 (44) -> 5 + 8 * 2 (21): each acceptance was saved by a statement of its
    # own, each allocation locked its stock and saved apart; 5 + 8 * 1 + 8 * 2 + 8 * 2 (45) -> 44: the batch's inbox
    # rows were a statement of their own; 5 + 8 * 1 + 8 * 3 + 8 * 6 (85) -> 45: each allocation read cancelled? and
    # what the order holds apart, each request's answers were a BEGIN…COMMIT of two and its intent a statement of its
    # own; 4 + 8 * 3 + 8 * 4 + 8 * 9 (132) before that (each acceptance read its checks' inputs and saved deliveries
    # and lines apart, each allocation locked its request apart, each request checked the inbox apart and wrapped its
    # intent in BEGIN…COMMIT)
    assert sum(1 for query in counter.statements if query.startswith(CLAIMING)) == 1, counter.statements
    assert statements == 5 + 8 * 2, counter.statements


async def test_warehouse_reports_of_many_orders_share_one_transaction(counted) -> None:
    pool, counter = counted
    orders, consumer = await requested_then_reported(pool, 9)
    reports = [
        WarehouseShipmentReported.model_validate(golden_message(
            "WarehouseShipmentReported", order_id=str(accepted.order_id), shipment_id=str(shipment_id_for(accepted.order_id, 0)),
            tracking_number=f"T-{n}",
        ))
        for n, accepted in enumerate(orders)
    ]
    as_records = [
        FakeRecord(topics.SHIPPING_CALLBACKS, 0, n, str(report.order_id).encode(), report.model_dump_json().encode(), [("type", report.type.encode())])
        for n, report in enumerate(reports)
    ]
    await consumer.process(as_records[:1])  # a connection's first use of an array type looks the type up
    await asyncio.sleep(0)
    counter.reset()
    await consumer.process(as_records[1:])
    await asyncio.sleep(0)
    statements, transactions = len(counter.statements), counter.transactions
    shipments = await pool.fetch("SELECT status FROM shipments WHERE order_id = ANY($1::uuid[])", [o.order_id for o in orders])
    assert [row["status"] for row in shipments] == ["shipped"] * 9
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE convert_from(payload, 'UTF8')::jsonb->>'type' = 'ShipmentShipped'") == 9
    print(f"\n8 shipment reports: {statements} statements, {transactions} transactions")
    assert transactions == 1
    # BEGIN, the inbox rows written with every shipment locked, what booking every order's first parcel reads, every
    # parcel booked and shipment saved with the outbox rows, COMMIT. 5 + 8 * 1 (13) -> 5: each report booked its parcel
    # by a statement of its own, the outbox rows one more; 4 + 8 * 3 (28) -> 6 + 8 * 1 (14): each report locked its
    # shipment and read what booking it reads; -> 5 + 8 * 1 (13): the inbox rows written apart
    assert sum(1 for query in counter.statements if query.startswith(CLAIMING) and "FROM SHIPMENTS" in query) == 1, counter.statements
    assert statements == 5, counter.statements


async def test_a_shipment_shipped_and_delivered_in_one_batch_is_locked_once_and_its_second_report_takes_it_as_saved(counted) -> None:
    pool, counter = counted
    orders, consumer = await requested_then_reported(pool, 2)
    reports = [
        report
        for n, accepted in enumerate(orders)
        for report in (
            WarehouseShipmentReported.model_validate(golden_message(
                "WarehouseShipmentReported", order_id=str(accepted.order_id),
                shipment_id=str(shipment_id_for(accepted.order_id, 0)), tracking_number=f"T-{n}",
            )),
            WarehouseDeliveryReported.model_validate(golden_message(
                "WarehouseDeliveryReported", order_id=str(accepted.order_id), shipment_id=str(shipment_id_for(accepted.order_id, 0)),
            )),
        )
    ]
    await asyncio.sleep(0)
    counter.reset()
    await consumer.process([
        FakeRecord(topics.SHIPPING_CALLBACKS, 0, n, str(report.order_id).encode(), report.model_dump_json().encode(), [("type", report.type.encode())])
        for n, report in enumerate(reports)
    ])
    await asyncio.sleep(0)
    statements, transactions = len(counter.statements), counter.transactions
    order_ids = [accepted.order_id for accepted in orders]
    shipments = await pool.fetch("SELECT status FROM shipments WHERE order_id = ANY($1::uuid[])", order_ids)
    assert [row["status"] for row in shipments] == ["delivered"] * 2
    published = await pool.fetch(
        "SELECT convert_from(payload, 'UTF8')::jsonb AS message FROM outbox WHERE convert_from(payload, 'UTF8')::jsonb->>'order_id' = ANY($1::text[])"
        " AND convert_from(payload, 'UTF8')::jsonb->>'type' IN ('ShipmentShipped', 'ShipmentDelivered') ORDER BY id",
        [str(order_id) for order_id in order_ids],
    )
    assert [json.loads(row["message"])["type"] for row in published] == ["ShipmentShipped", "ShipmentDelivered"] * 2
    assert all(json.loads(row["message"])["all_delivered"] for row in published[1::2])
    # one transaction: BEGIN, the inbox rows written with both shipments locked (and what recording their deliveries
    # reads), what booking both parcels reads, both parcels booked and both shipments saved (delivered, on the shipment
    # as its parcel left it) with the outbox rows, COMMIT. 5 + 2 * 2 (9) -> 5: per order the parcel booked and the
    # delivery recorded apart, the outbox rows one more; 4 + 2 * 7 (18) -> 6 + 2 * 2 (10): each report locked its
    # shipment, each parcel read what booking it reads, each delivery read shop and count; -> 5 + 2 * 2 (9): the inbox
    # rows written apart
    assert transactions == 1
    assert statements == 5, counter.statements


CLAIMING = "WITH CLAIM AS (INSERT INTO INBOX"


def signed_callback(secret: str, report: dict) -> dict:
    """A warehouse callback's request, signed as the warehouse signs it."""
    body = json.dumps(report).encode()
    return {"content": body, "headers": {"X-Ordermesh-Signature": sign(secret, body, int(time.time())), "Content-Type": "application/json"}}


async def requested_shipment(pool: asyncpg.Pool, handlers: ShippingHandlers) -> tuple[OrderAccepted, UUID]:
    """An order accepted, allocated and ready to ship through `handlers`: the order and its first shipment's id."""
    accepted = OrderAccepted.model_validate(golden_message("OrderAccepted", order_id=str(uuid4())))
    await handlers.on_order_accepted(accepted, MessageContext(pool, accepted.event_id, "test", log=None))
    for stage in (Stage.AWAITING_ALLOCATION, Stage.READY_TO_SHIP):
        message = progressed(accepted.order_id, stage)
        await handlers.on_order_progressed(message, MessageContext(pool, message.event_id, "test", log=None))
    return accepted, shipment_id_for(accepted.order_id, 0)


def delivered_report(accepted: OrderAccepted, shipment_id: UUID) -> dict:
    """The warehouse's report that the shipment was delivered, as its callback body."""
    return {
        "type": "delivered", "event_id": str(uuid4()), "shipment_id": str(shipment_id), "order_id": str(accepted.order_id),
        "request_id": "wr_1", "delivered_at": "2025-03-14T05:30:00Z", "cash_collected": None,
    }


async def test_a_warehouse_callback_costs_the_ingress_two_statements_and_no_transaction(counted) -> None:
    pool, counter = counted
    accepted, shipment_id = await requested_shipment(pool, ShippingHandlers(Warehouse()))
    secret = "callback-secret"
    ingress = asgi_endpoint(warehouse_callback(secret, lambda: pool), methods=("POST",))
    report = delivered_report(accepted, shipment_id)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ingress), base_url="http://shipping") as client:
        await asyncio.sleep(0)
        counter.reset()
        accepted_once = await client.post("/callbacks/warehouse", **signed_callback(secret, report))
        await asyncio.sleep(0)
        statements = len(counter.statements)
        replayed = await client.post("/callbacks/warehouse", **signed_callback(secret, report))
        stranger = {**report, "event_id": str(uuid4()), "order_id": str(uuid4())}
        unknown = await client.post("/callbacks/warehouse", **signed_callback(secret, stranger))
        await asyncio.sleep(0)
        counter.reset()
        later = await client.post("/callbacks/warehouse", **signed_callback(secret, {**report, "event_id": str(uuid4())}))
        await asyncio.sleep(0)
        later_statements = len(counter.statements)
    assert (accepted_once.status_code, replayed.status_code, unknown.status_code, later.status_code) == (202, 409, 404, 202)
    assert await pool.fetchval("SELECT count(*) FROM warehouse_callback_receipts") == 2
    queued = await pool.fetch(
        "SELECT convert_from(payload, 'UTF8')::jsonb AS message FROM outbox WHERE topic = $1", topics.SHIPPING_CALLBACKS
    )
    assert [json.loads(row["message"])["correlation_id"] for row in queued] == [str(accepted.correlation_id)] * 2
    # the shipment's later callback (its delivery after its parcel) finds what it was requested under kept: 2 -> 1
    assert later_statements <= 1, counter.statements
    # the shipment's correlation id and trace context read; the receipt claimed with the report queued on the outbox,
    # one statement outside a transaction. 4 -> 2 (BEGIN, the receipt claimed reading the shipment, outbox, COMMIT;
    # 5 before that, the shipment read apart)
    assert statements <= 2 and not any(query.startswith("BEGIN") for query in counter.statements[:statements]), counter.statements


async def test_a_callback_of_a_shipment_this_process_requested_costs_the_ingress_one_statement(counted) -> None:
    pool, counter = counted
    origins = ShipmentOrigins()
    accepted, shipment_id = await requested_shipment(pool, ShippingHandlers(Warehouse(), origins=origins))
    stored = await pool.fetchrow("SELECT correlation_id, traceparent FROM shipments WHERE shipment_id = $1", shipment_id)
    secret = "callback-secret"
    ingress = asgi_endpoint(warehouse_callback(secret, lambda: pool, origins), methods=("POST",))
    report = delivered_report(accepted, shipment_id)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ingress), base_url="http://shipping") as client:
        await asyncio.sleep(0)
        counter.reset()
        first = await client.post("/callbacks/warehouse", **signed_callback(secret, report))
        await asyncio.sleep(0)
        statements = list(counter.statements)
    assert first.status_code == 202
    [queued] = await pool.fetch(
        "SELECT convert_from(payload, 'UTF8')::jsonb AS message FROM outbox WHERE topic = $1", topics.SHIPPING_CALLBACKS
    )
    assert json.loads(queued["message"])["correlation_id"] == str(stored["correlation_id"]) == str(accepted.correlation_id)
    assert await origins.of(pool, shipment_id, accepted.order_id) == (stored["correlation_id"], stored["traceparent"])
    # the receipt claimed with the report queued on the outbox: what the shipment was requested under was kept when
    # it was requested (2 -> 1: its first callback read it)
    assert len(statements) == 1, statements


async def requested_then_reported(pool: asyncpg.Pool, count: int) -> tuple[list, Consumer]:
    """`count` card orders accepted, allocated and requested of the warehouse; and a consumer of the warehouse's
    callbacks as the shipping service has it (batched, the batch's shipments locked together)."""
    handlers = ShippingHandlers(Warehouse())
    orders_consumer = Consumer(orders_events(handlers), group_id="ordermesh-shipping", pool_provider=lambda: pool, metrics=Metrics("shipping"), retry_max_seconds=0.2)
    orders, records = card_orders(count)
    await orders_consumer.process(records)
    callbacks = Subscription(
        topics.SHIPPING_CALLBACKS, ShippingCallback,
        {WarehouseShipmentReported: handlers.on_warehouse_shipment_reported, WarehouseDeliveryReported: handlers.on_delivery_reported},
        batched=True, **BATCH_SHIPMENTS,
    )
    return orders, Consumer(callbacks, group_id="ordermesh-shipping", pool_provider=lambda: pool, metrics=Metrics("shipping"), retry_max_seconds=0.2)
