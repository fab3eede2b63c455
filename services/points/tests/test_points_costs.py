"""What one message costs the points database: statements and transactions per handled message type of a card order
that uses points, counted on a real PostgreSQL through a query logger on every pooled connection (a budget that
cannot silently grow)."""

from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest
from ordermesh_contracts import OrderAccepted, OrderCompleted, PaymentCaptured
from ordermesh_points import handlers, store
from support import counted_pool, golden_message, statements_of
from doubles import StatementCounter


@pytest.fixture
async def counted(fresh_database: str) -> AsyncIterator[tuple[asyncpg.Pool, StatementCounter]]:
    async with counted_pool(fresh_database, "points") as (pool, counter):
        yield pool, counter


def accepted(points_used: int) -> OrderAccepted:
    raw = golden_message("OrderAccepted", order_id=str(uuid4()))
    raw["charges"]["points_used"] = points_used
    return OrderAccepted.model_validate(raw)


async def test_a_points_order_costs_the_points_database_a_bounded_number_of_statements_per_message(counted) -> None:
    pool, counter = counted
    first = accepted(0)  # the customer's first order earns what the second one uses
    for message, handler in (
        (first, handlers.on_order_accepted),
        (PaymentCaptured.model_validate(golden_message("PaymentCaptured", order_id=str(first.order_id), shop_id=first.shop_id)), handlers.on_payment_captured),
    ):
        await statements_of(pool, counter, handler, message)
    order = accepted(10)
    captured = PaymentCaptured.model_validate(golden_message("PaymentCaptured", order_id=str(order.order_id), shop_id=order.shop_id))
    completed = OrderCompleted.model_validate(golden_message("OrderCompleted", order_id=str(order.order_id), shop_id=order.shop_id))
    costs = {
        "OrderAccepted": await statements_of(pool, counter, handlers.on_order_accepted, order),
        "PaymentCaptured": await statements_of(pool, counter, handlers.on_payment_captured, captured),
        "OrderCompleted": await statements_of(pool, counter, handlers.on_order_completed, completed),
        "redelivered OrderCompleted": await statements_of(pool, counter, handlers.on_order_completed, completed),
    }
    async with pool.acquire() as conn:
        row = await store.order_row(conn, order.order_id)
        balance = await store.balance(conn, order.shop_id, order.customer.customer_id)
    assert (row["status"], row["reservation"], row["reserved"]) == ("confirmed", "committed", 10)
    assert [entry["kind"] for entry in row["entries"]] == ["accrued", "reserved", "confirmed", "committed"]
    assert balance.used == 10
    print("\ncost (statements, transactions):", costs)
    statements = {name: count for name, (count, _) in costs.items()}
    assert {name: count for name, (_, count) in costs.items()} == {
        "OrderAccepted": 1, "PaymentCaptured": 1, "OrderCompleted": 1, "redelivered OrderCompleted": 1,
    }
    # BEGIN, inbox, the order locked (created) with its shop's rules, the customer locked with its balances, the order
    # saved with its entries, outbox, COMMIT; it was 24 (settings, method, waiting payments, edit and terms read and
    # written apart, the order locked twice in two statements, the balance added up from the ledger and the order saved
    # after every decision), then 8 (the balance added up from the ledger after the lock)
    assert statements["OrderAccepted"] <= 7, statements
    # BEGIN, inbox, the order locked with its rules, the customer locked with its balances, saved with the entry,
    # outbox, COMMIT; it was 14, then 8
    assert statements["PaymentCaptured"] <= 7, statements
    # the same without an event to publish; it was 9, then 7
    assert statements["OrderCompleted"] <= 6, statements
    assert statements["redelivered OrderCompleted"] == 3, statements  # BEGIN, inbox, ROLLBACK
