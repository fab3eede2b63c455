"""A batch of order events handled in one transaction (orders and balances taken from the batch, saved at its end)
ends exactly as the same messages handled one at a time: the orders, the ledger, the kept balances and what is
announced, with several messages of one order and several orders of one customer in the batch."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest
from ordermesh_contracts import (
    GrantPoints,
    OrderAccepted,
    OrderCancelled,
    OrderCompleted,
    OrderEdited,
    OrdersEvent,
    PaymentCaptured,
    topics,
)
from ordermesh_points import commands, handlers, store
from ordermesh_points.domain.ledger import balance_of
from ordermesh_servicekit.consuming import Consumer, MessageContext, Subscription
from ordermesh_servicekit.metrics import Metrics
from support import counted_pool, golden_message
from doubles import FakeRecord, StatementCounter

SHOP = "kyoto-tea"
HANDLERS = {
    OrderAccepted: handlers.on_order_accepted,
    OrderEdited: handlers.on_order_edited,
    OrderCompleted: handlers.on_order_completed,
    OrderCancelled: handlers.on_order_cancelled,
}


@pytest.fixture
async def counted(fresh_database: str) -> AsyncIterator[tuple[asyncpg.Pool, StatementCounter]]:
    async with counted_pool(fresh_database, "points") as (pool, counter):
        yield pool, counter


def accepted(customer_id: str, points_used: int) -> OrderAccepted:
    raw = golden_message("OrderAccepted", order_id=str(uuid4()), shop_id=SHOP)
    raw["customer"]["customer_id"] = customer_id
    raw["charges"]["points_used"] = points_used
    return OrderAccepted.model_validate(raw)


def edited(order: OrderAccepted, points_used: int) -> OrderEdited:
    raw = golden_message("OrderEdited", order_id=str(order.order_id), shop_id=SHOP, edit_no=1)
    raw["occurred_at"] = (order.occurred_at + timedelta(minutes=60)).isoformat()
    raw["customer"] = order.customer.model_dump(mode="json")
    raw["charges"]["points_used"] = points_used
    return OrderEdited.model_validate(raw)


def about(order: OrderAccepted) -> dict:
    return {"order_id": str(order.order_id), "shop_id": SHOP}


async def one_at_a_time(pool: asyncpg.Pool, message, handler) -> None:
    await handler(message, MessageContext(pool, message.event_id, topics.ORDERS_EVENTS, log=None))


async def customer_with_points(pool: asyncpg.Pool, customer_id: str) -> OrderAccepted:
    """A customer with 500 points granted and an order whose points are confirmed: the order."""
    earning = accepted(customer_id, 0)
    await one_at_a_time(pool, earning, handlers.on_order_accepted)
    capture = PaymentCaptured.model_validate(golden_message("PaymentCaptured", **about(earning)))
    await handlers.on_payment_captured(capture, MessageContext(pool, capture.event_id, topics.PAYMENTS_EVENTS, log=None))
    grant = GrantPoints(shop_id=SHOP, issued_by="staff", customer_id=customer_id, points=500, reason="welcome")
    await commands.grant_points(grant, MessageContext(pool, grant.event_id, topics.POINTS_COMMANDS, log=None))
    return earning


def story(customer_id: str, earning: OrderAccepted) -> tuple[list, dict[UUID, str]]:
    """An edit before its order's acceptance, the acceptance and its completion; the cancellation of the customer's
    confirmed order; another acceptance using more points than are left after all that. Grouped by order, as a batch
    handles them."""
    first, second = accepted(customer_id, 100), accepted(customer_id, 250)
    messages = [
        edited(first, points_used=300),
        first,
        OrderCompleted.model_validate(golden_message("OrderCompleted", **about(first))),
        OrderCancelled.model_validate(golden_message("OrderCancelled", customer_id=customer_id, **about(earning))),
        second,
    ]
    return messages, {first.order_id: "first", second.order_id: "second", earning.order_id: "earning"}


async def outcome(pool: asyncpg.Pool, customer_id: str, roles: dict[UUID, str]) -> dict:
    """What the customer's orders, ledger, balance and announcements are, the orders named by their role."""
    async with pool.acquire() as conn:
        rows = {roles[order_id]: await store.order_row(conn, order_id) for order_id in roles}
        ledger = await conn.fetch(
            "SELECT kind, points, order_id FROM ledger WHERE shop_id = $1 AND customer_id = $2 ORDER BY entry_id", SHOP, customer_id
        )
        entries = await store.entries_of(conn, SHOP, customer_id)
        balance = await store.balance(conn, SHOP, customer_id)
        payloads = await conn.fetch("SELECT payload FROM outbox WHERE key = $1 ORDER BY id", f"{SHOP}:{customer_id}".encode())
    announced = [json.loads(bytes(row["payload"])) for row in payloads]
    assert balance == balance_of(entries)
    kept = ("status", "points", "reserved", "reservation", "edit_no", "pending_edit_no", "pending_edit", "payment_method", "customer_id")
    return {
        "orders": {role: {name: row[name] for name in kept if name != "customer_id"} for role, row in rows.items()},
        "ledger": [(row["kind"], row["points"], roles.get(row["order_id"])) for row in ledger],
        "balance": balance,
        "announced": [
            (body["type"], roles.get(UUID(body["order_id"])) if body.get("order_id") else None,
             {k: v for k, v in body.items() if k in ("points", "requested", "available", "reversed", "deducted", "released", "points_used")})
            for body in announced
        ],
    }


async def test_a_batch_of_one_customers_orders_ends_exactly_as_its_messages_one_at_a_time(counted) -> None:
    pool, counter = counted
    alone_messages, alone_roles = story("ALONE", await customer_with_points(pool, "ALONE"))
    for message in alone_messages:
        await one_at_a_time(pool, message, HANDLERS[type(message)])
    batch_messages, batch_roles = story("BATCHED", await customer_with_points(pool, "BATCHED"))
    consumer = Consumer(
        Subscription(topics.ORDERS_EVENTS, OrdersEvent, HANDLERS, batched=True, **handlers.BATCH_POINTS),
        group_id="ordermesh-points", pool_provider=lambda: pool, metrics=Metrics("points"), retry_max_seconds=0.2,
    )
    records = [
        FakeRecord(topics.ORDERS_EVENTS, 0, n, str(m.order_id).encode(), m.model_dump_json().encode(), [("type", m.type.encode())])
        for n, m in enumerate(batch_messages)
    ]
    await asyncio.sleep(0)
    counter.reset()
    await consumer.process(records)
    await asyncio.sleep(0)
    assert counter.transactions == 1 and not any(q.startswith("ROLLBACK") for q in counter.statements), counter.statements
    # BEGIN, the inbox rows with the orders and the customer locked, every save, COMMIT: each message took what the one
    # before left (5 with the inbox rows apart)
    assert len(counter.statements) == 4, counter.statements
    alone, batched = await outcome(pool, "ALONE", alone_roles), await outcome(pool, "BATCHED", batch_roles)
    assert batched == alone
    # the second acceptance saw what the first order held and the cancellation took: 596 - 300 - 96 = 200 < 250
    assert ("PointsRedemptionFailed", "second", {"requested": 250, "available": 200}) in batched["announced"], batched["announced"]
    assert batched["orders"]["first"]["reservation"] == "committed" and batched["orders"]["first"]["reserved"] == 300
    assert batched["orders"]["first"]["pending_edit"] is None and batched["orders"]["earning"]["status"] == "reversed"
