"""A batch of orders events handled in one transaction (acceptances kept and first allocations decided on the stock the
batch locked, all saved at its end) ends exactly as the same messages handled one at a time: the orders' deliveries
and lines, allocations, stock and what is announced, with orders competing for the same stock, an order accepted and
allocated in the batch, and a top-up that reads the database itself; and it costs the same few statements whatever
its size."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from uuid import UUID, uuid4

import asyncpg
import pytest
from ordermesh_contracts import OrderAccepted, OrderProgressed, OrdersEvent, Stage, topics
from ordermesh_servicekit.consuming import Consumer, MessageContext, Subscription
from ordermesh_servicekit.metrics import Metrics
from ordermesh_shipping import store, store_stock
from ordermesh_shipping.handlers import BATCH_ORDERS, ShippingHandlers, calls_the_warehouse
from support import counted_pool, golden_message
from doubles import FakeRecord, StatementCounter


class Warehouse:
    """Takes every shipment request."""

    async def request_shipment(self, request) -> str:
        return f"wr_{request.shipment_id[:8]}"


HANDLERS = ShippingHandlers(Warehouse())


@pytest.fixture
async def counted(fresh_database: str) -> AsyncIterator[tuple[asyncpg.Pool, StatementCounter]]:
    async with counted_pool(fresh_database, "shipping") as (pool, counter):
        yield pool, counter


def accepted(lines: dict[str, int]) -> OrderAccepted:
    raw = golden_message("OrderAccepted", order_id=str(uuid4()))
    template = raw["deliveries"][0]["lines"][0]
    raw["deliveries"][0]["lines"] = [{**template, "sku": sku, "name": f"品 {sku}", "quantity": units} for sku, units in lines.items()]
    return OrderAccepted.model_validate(raw)


def allocating(order: OrderAccepted) -> OrderProgressed:
    return OrderProgressed.model_validate(golden_message(
        "OrderProgressed", order_id=str(order.order_id), to_stage=Stage.AWAITING_ALLOCATION.value,
    ))


async def one_at_a_time(pool: asyncpg.Pool, message) -> None:
    handler = HANDLERS.on_order_accepted if isinstance(message, OrderAccepted) else HANDLERS.on_order_progressed
    await handler(message, MessageContext(pool, message.event_id, topics.ORDERS_EVENTS, log=None))


def consumer(pool: asyncpg.Pool) -> Consumer:
    """Shipping's consumer of orders events as the app wires it (batched, the batch's orders read and written once)."""
    subscription = Subscription(
        topics.ORDERS_EVENTS, OrdersEvent,
        {OrderAccepted: HANDLERS.on_order_accepted, OrderProgressed: HANDLERS.on_order_progressed},
        batched=True, alone=calls_the_warehouse, **BATCH_ORDERS,
    )
    return Consumer(subscription, group_id="ordermesh-shipping", pool_provider=lambda: pool, metrics=Metrics("shipping"), retry_max_seconds=0.2)


def records(messages: list) -> list[FakeRecord]:
    return [
        FakeRecord(topics.ORDERS_EVENTS, 0, n, str(m.order_id).encode(), m.model_dump_json().encode(), [("type", m.type.encode())])
        for n, m in enumerate(messages)
    ]


async def in_one_batch(pool: asyncpg.Pool, counter: StatementCounter, messages: list) -> list[str]:
    """Handles `messages` as one batch of shipping's orders-events consumer; its statements."""
    await asyncio.sleep(0)
    counter.reset()
    await consumer(pool).process(records(messages))
    await asyncio.sleep(0)
    return list(counter.statements)


async def story(pool: asyncpg.Pool, world: str) -> tuple[list, dict[UUID, str]]:
    """Stock of two skus; an order accepted before (to allocate now), an order allocated partly before (to top up now
    that stock came) and one accepted before (to allocate after that top-up). The messages to handle, grouped by order
    as a batch handles them: the first allocated, then an order accepted and allocated (short of stock: the first took
    it), one only accepted, the top-up, the last allocation (nothing left)."""
    a, b = f"{world}-A", f"{world}-B"
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [(a, "main", 3), (b, "main", 1)])
    first, topped, last = accepted({a: 2}), accepted({b: 4}), accepted({a: 1})
    for message in (first, topped, allocating(topped), last):
        await one_at_a_time(pool, message)
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [(b, "main", 10)])
    second, only = accepted({a: 2, b: 1}), accepted({b: 1})
    messages = [allocating(first), second, allocating(second), only, allocating(topped), allocating(last)]
    return messages, {first.order_id: "first", second.order_id: "second", only.order_id: "only", topped.order_id: "topped", last.order_id: "last"}


async def outcome(pool: asyncpg.Pool, world: str, roles: dict[UUID, str]) -> dict:
    """The world's orders as stored (deliveries, lines, allocations, coverage), its stock and what was announced about
    its orders, the orders named by their role and the skus without the world's prefix."""
    order_ids = list(roles)

    def sku(name: str) -> str:
        return name.replace(f"{world}-", "")

    async with pool.acquire() as conn:
        deliveries = await conn.fetch(
            "SELECT order_id, delivery_index, shop_id, carrier, payment_method, cod_amount, currency, held_checks, address"
            " FROM deliveries WHERE order_id = ANY($1::uuid[])", order_ids,
        )
        lines = await conn.fetch(
            "SELECT order_id, delivery_index, sku, quantity, carrier, name, unit_price FROM order_lines WHERE order_id = ANY($1::uuid[])",
            order_ids,
        )
        allocations = await conn.fetch("SELECT order_id, sku, quantity FROM allocations WHERE order_id = ANY($1::uuid[])", order_ids)
        requests = await conn.fetch("SELECT order_id, shop_id, coverage FROM allocation_requests WHERE order_id = ANY($1::uuid[])", order_ids)
        stock = await conn.fetch("SELECT sku, on_hand, allocated FROM stock WHERE sku LIKE $1", f"{world}-%")
        payloads = await conn.fetch("SELECT payload FROM outbox ORDER BY id")
    announced = [json.loads(bytes(row["payload"])) for row in payloads]
    return {
        "deliveries": sorted(
            (roles[r["order_id"]], r["delivery_index"], r["shop_id"], r["carrier"], r["payment_method"], r["cod_amount"],
             r["currency"], tuple(r["held_checks"]), r["address"])
            for r in deliveries
        ),
        "lines": sorted(
            (roles[r["order_id"]], r["delivery_index"], sku(r["sku"]), r["quantity"], r["carrier"], sku(r["name"]), r["unit_price"])
            for r in lines
        ),
        "allocations": sorted((roles[r["order_id"]], sku(r["sku"]), r["quantity"]) for r in allocations),
        "requests": sorted((roles[r["order_id"]], r["shop_id"], r["coverage"]) for r in requests),
        "stock": sorted((sku(r["sku"]), r["on_hand"], r["allocated"]) for r in stock),
        "announced": [
            (body["type"], roles[UUID(body["order_id"])], body.get("allocation"), body.get("result"),
             [(sku(line["sku"]), line["quantity"]) for line in body.get("lines", [])])
            for body in announced
            if UUID(body["order_id"]) in roles
        ],
    }


async def test_a_batch_of_orders_events_ends_exactly_as_its_messages_one_at_a_time(counted) -> None:
    pool, counter = counted
    alone_messages, alone_roles = await story(pool, "ALONE")
    for message in alone_messages:
        await one_at_a_time(pool, message)
    batch_messages, batch_roles = await story(pool, "BATCHED")
    statements = await in_one_batch(pool, counter, batch_messages)
    assert counter.transactions == 1 and not any(q.startswith("ROLLBACK") for q in statements), statements
    alone, batched = await outcome(pool, "ALONE", alone_roles), await outcome(pool, "BATCHED", batch_roles)
    assert batched == alone
    allocated = {role: coverage for _, role, coverage, _, _ in batched["announced"] if coverage is not None}
    assert allocated == {"first": "full", "second": "partial", "topped": "full", "last": "none"}, batched["announced"]
    assert ("A", 3, 3) in batched["stock"] and ("B", 10, 5) in batched["stock"]


@pytest.mark.parametrize("orders", [2, 6])
async def test_a_batch_costs_the_same_statements_however_many_orders_it_accepts_or_allocates(counted, orders) -> None:
    pool, counter = counted
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("MATCHA-UJI-40G", "main", 1000), ("CHAWAN-KIYOMIZU", "main", 1000)])
    await in_one_batch(pool, counter, [accepted({"MATCHA-UJI-40G": 1}) for _ in range(2)])  # array types looked up once
    to_allocate = [accepted({"MATCHA-UJI-40G": 2, "CHAWAN-KIYOMIZU": 1}) for _ in range(orders)]
    # BEGIN, the inbox rows written with what every order's checks read, every acceptance saved with the outbox rows,
    # COMMIT (4 + 1 per order before)
    assert len(await in_one_batch(pool, counter, to_allocate)) == 4
    # BEGIN, the inbox rows written with every order's demand and stock locked, every allocation saved with the outbox
    # rows, COMMIT (4 + 2 per order before)
    assert len(await in_one_batch(pool, counter, [allocating(order) for order in to_allocate])) == 4
    both = [accepted({"MATCHA-UJI-40G": 1}) for _ in range(orders)]
    # accepted and allocated in one batch: the stock is locked by a statement of its own (4 + 3 per order before)
    assert len(await in_one_batch(pool, counter, [m for order in both for m in (order, allocating(order))])) == 5
    coverage = await pool.fetch(
        "SELECT coverage FROM allocation_requests WHERE order_id = ANY($1::uuid[])", [o.order_id for o in to_allocate + both]
    )
    assert [row["coverage"] for row in coverage] == ["full"] * 2 * orders
    assert await pool.fetchrow("SELECT on_hand, allocated FROM stock WHERE sku = 'MATCHA-UJI-40G'") == (1000, 3 * orders)


async def test_a_batch_allocating_an_order_cancelled_while_it_waited_for_the_stock_is_undone_and_the_order_gets_nothing(counted) -> None:
    pool, counter = counted
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("WAIT-B", "main", 5)])
    cancelled, kept = accepted({"WAIT-B": 2}), accepted({"WAIT-B": 1})
    for order in (cancelled, kept):
        await one_at_a_time(pool, order)
    counter.reset()
    async with pool.acquire() as other, other.transaction():
        await store_stock.lock_stock_rows(other, ["WAIT-B"])  # another order's allocation holds the stock row
        batch = asyncio.create_task(consumer(pool).process(records([allocating(cancelled), allocating(kept)])))
        async with asyncio.timeout(10):
            while not await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FROM stock%'"
            ) and not batch.done():
                await asyncio.sleep(0.01)
        assert not batch.done()
        await store.record_cancellation(pool, cancelled.order_id, cancelled.shop_id, True, datetime.now(timezone.utc), uuid4())
    await asyncio.wait_for(batch, 10)
    await asyncio.sleep(0)
    assert any(q.startswith("ROLLBACK") for q in counter.statements), counter.statements  # the batch was undone
    types = [json.loads(bytes(row["payload"]))["order_id"] for row in await pool.fetch(
        "SELECT payload FROM outbox WHERE convert_from(payload, 'UTF8')::jsonb->>'type' = 'StockAllocated'"
    )]
    assert types == [str(kept.order_id)]
    assert await store_stock.allocated_to(pool, cancelled.order_id) == {}
    assert await pool.fetchrow("SELECT on_hand, allocated FROM stock WHERE sku = 'WAIT-B'") == (5, 1)
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 2 + 2
