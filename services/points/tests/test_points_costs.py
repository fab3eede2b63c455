"""What one message costs the points database: statements and transactions per handled message type of a card order
that uses points, counted on a real PostgreSQL through a query logger on every pooled connection (a budget that
cannot silently grow)."""

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest
from ordermesh_contracts import OrderAccepted, OrderCancelled, OrderCompleted, OrdersEvent, PaymentCaptured, PaymentsEvent, topics
from ordermesh_points import handlers, store
from ordermesh_servicekit.consuming import Consumer, Subscription
from ordermesh_servicekit.metrics import Metrics
from ordermesh_servicekit.unit_of_work import ClaimingPreload, write_batch
from support import counted_pool, golden_message, statements_of
from doubles import FakeRecord, StatementCounter


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
    assert statements["OrderAccepted"] <= 6, statements  # 7 before the inbox row went with the outbox rows
    # BEGIN, inbox, the order locked with its rules, the customer locked with its balances, saved with the entry,
    # inbox and outbox, COMMIT; it was 14, then 8, then 7 with the inbox row written apart
    assert statements["PaymentCaptured"] <= 6, statements
    # the same without an event to publish; it was 9, then 7
    assert statements["OrderCompleted"] <= 6, statements
    # the work done and rolled back when the inbox row, written last, is found there (3 when it came first)
    assert statements["redelivered OrderCompleted"] <= 6, statements


def record(offset: int, message) -> FakeRecord:
    topic = topics.PAYMENTS_EVENTS if isinstance(message, PaymentCaptured) else topics.ORDERS_EVENTS
    return FakeRecord(topic, 0, offset, str(message.order_id).encode(), message.model_dump_json().encode(), [("type", message.type.encode())])


def batched(pool: asyncpg.Pool, topic: str, handled: dict, metrics: Metrics | None = None) -> Consumer:
    """A consumer of `topic` as the points service has it: batched, the batch's orders and customers preloaded."""
    subscription = Subscription(topic, PaymentsEvent if topic == topics.PAYMENTS_EVENTS else OrdersEvent, handled, batched=True, **handlers.BATCH_POINTS)
    return Consumer(
        subscription, group_id="ordermesh-points", pool_provider=lambda: pool, metrics=metrics or Metrics("points"), retry_max_seconds=0.2
    )


def accepted_for(customer_id: str, points_used: int) -> OrderAccepted:
    raw = golden_message("OrderAccepted", order_id=str(uuid4()))
    raw["charges"]["points_used"] = points_used
    raw["customer"]["customer_id"] = customer_id
    return OrderAccepted.model_validate(raw)


BATCH_LOCKS = "WITH CLAIM AS (INSERT INTO INBOX"
LOCKING = "O AS ( INSERT INTO ORDER_POINTS (ORDER_ID, SHOP_ID, STATUS) SELECT"
BATCH_SAVES = "WITH SAVED AS ( UPDATE ORDER_POINTS O SET"


async def statements_of_batch(
    pool: asyncpg.Pool, counter: StatementCounter, topic: str, handled: dict, messages: list, metrics: Metrics | None = None
) -> tuple[list[str], int]:
    """The statements and transactions of `messages` handled as one batch of `topic` by a points consumer."""
    await asyncio.sleep(0)
    counter.reset()
    await batched(pool, topic, handled, metrics).process([record(n, message) for n, message in enumerate(messages)])
    await asyncio.sleep(0)
    return list(counter.statements), counter.transactions


def batch_statements(statements: list[str]) -> dict[str, int]:
    """How many of a batch's statements write its inbox rows and lock its orders and customers, save them, and all of
    them; and how many lock orders."""
    opening = [" ".join(q.split()) for q in statements]
    return {
        "locks": sum(1 for q in opening if q.startswith(BATCH_LOCKS) and LOCKING in q),
        "locking": sum(1 for q in opening if LOCKING in q),
        "saves": sum(1 for q in opening if q.startswith(BATCH_SAVES)),
        "all": len(statements),
    }


async def test_a_batch_of_payments_of_many_orders_locks_their_orders_and_customers_in_one_statement_and_saves_them_in_another(counted) -> None:
    pool, counter = counted
    orders = [accepted_for(f"C-batch-{n}", 0) for n in range(6)]
    for order in orders:
        await statements_of(pool, counter, handlers.on_order_accepted, order)
    captures = [
        PaymentCaptured.model_validate(golden_message("PaymentCaptured", order_id=str(o.order_id), shop_id=o.shop_id)) for o in orders
    ]
    statements, transactions = await statements_of_batch(pool, counter, topics.PAYMENTS_EVENTS, {PaymentCaptured: handlers.on_payment_captured}, captures)
    async with pool.acquire() as conn:
        rows = [await store.order_row(conn, o.order_id) for o in orders]
        balances = [await store.balance(conn, o.shop_id, o.customer.customer_id) for o in orders]
    assert [row["status"] for row in rows] == ["confirmed"] * 6
    assert [balance.available for balance in balances] == [row["points"] for row in rows] and rows[0]["points"] > 0
    print(f"\nbatch of 6 payments: {len(statements)} statements, {transactions} transactions")
    assert transactions == 1
    # BEGIN, the inbox rows written with the orders and customers locked, the orders saved with their entries and the
    # outbox rows, COMMIT; it was 3 per order (each locked and saved apart), then 6 + 6 (orders and customers locked
    # once, a save per order), then 5 (the inbox rows apart)
    assert batch_statements(statements) == {"locks": 1, "locking": 1, "saves": 1, "all": 4}, statements


async def test_a_batch_of_acceptances_of_new_orders_and_customers_creates_them_with_its_locks(counted) -> None:
    pool, counter = counted
    orders = [accepted_for(f"C-new-{n}", 0) for n in range(4)]
    statements, transactions = await statements_of_batch(pool, counter, topics.ORDERS_EVENTS, {OrderAccepted: handlers.on_order_accepted}, orders)
    async with pool.acquire() as conn:
        rows = [await store.order_row(conn, o.order_id) for o in orders]
        balances = [await store.balance(conn, o.shop_id, o.customer.customer_id) for o in orders]
        accounts = await conn.fetchval(
            "SELECT count(*) FROM customer_accounts WHERE customer_id = ANY($1::text[])", [o.customer.customer_id for o in orders]
        )
    assert [row["status"] for row in rows] == ["provisional"] * 4 and rows[0]["points"] > 0
    assert [balance.provisional for balance in balances] == [row["points"] for row in rows]
    assert accounts == 4
    print(f"\nbatch of 4 new acceptances: {len(statements)} statements, {transactions} transactions")
    assert transactions == 1
    # BEGIN, the inbox rows written with the orders and accounts created and locked, the orders saved with their
    # entries and the outbox rows, COMMIT; it was 4 + 4 * 3 (each order and account created and locked apart, each
    # order saved apart), then 5 (the inbox rows apart)
    assert batch_statements(statements) == {"locks": 1, "locking": 1, "saves": 1, "all": 4}, statements


async def test_a_completion_of_an_order_the_service_never_heard_of_creates_nothing_in_a_batch(counted) -> None:
    pool, counter = counted
    known = accepted_for("C-known", 0)
    unknown = accepted_for("C-unknown", 0)
    completed = [
        OrderCompleted.model_validate(golden_message("OrderCompleted", order_id=str(o.order_id), shop_id=o.shop_id)) for o in (known, unknown)
    ]
    handled = {OrderAccepted: handlers.on_order_accepted, OrderCompleted: handlers.on_order_completed}
    await batched(pool, topics.ORDERS_EVENTS, handled).process([record(0, known), record(1, completed[0]), record(2, completed[1])])
    async with pool.acquire() as conn:
        assert await store.order_row(conn, unknown.order_id) is None
        assert not await store.lock_known_customer(conn, unknown.shop_id, "C-unknown")
        assert (await store.order_row(conn, known.order_id))["status"] == "provisional"


async def test_two_acceptances_of_one_customer_in_a_batch_book_on_the_balance_the_first_left(counted) -> None:
    pool, counter = counted
    earning, available = await points_earned(pool, counter, "C-twice")
    assert available > 0
    # both use all the customer has: the first reserves it, the second must see it gone (the account was preloaded once)
    first, second = accepted_for("C-twice", available), accepted_for("C-twice", available)
    await batched(pool, topics.ORDERS_EVENTS, {OrderAccepted: handlers.on_order_accepted}).process([record(0, first), record(1, second)])
    async with pool.acquire() as conn:
        reserved = [(await store.order_row(conn, o.order_id))["reservation"] for o in (first, second)]
        balance = await store.balance(conn, earning.shop_id, "C-twice")
    assert balance.available == 0 and balance.reserved == available, balance
    assert reserved[0] == "reserved" and reserved[1] != "reserved", reserved
    failed = await pool.fetchval("SELECT count(*) FROM outbox WHERE convert_from(payload, 'UTF8')::jsonb->>'type' = 'PointsRedemptionFailed'")
    assert failed == 1


async def test_two_messages_of_one_order_in_a_batch_the_second_sees_what_the_first_saved(counted) -> None:
    pool, counter = counted
    _, available = await points_earned(pool, counter, "C-undone")
    using = accepted_for("C-undone", available)
    await statements_of(pool, counter, handlers.on_order_accepted, using)
    about = {"order_id": str(using.order_id), "shop_id": using.shop_id}
    cancelled = OrderCancelled.model_validate(golden_message("OrderCancelled", customer_id="C-undone", **about))
    completed = OrderCompleted.model_validate(golden_message("OrderCompleted", **about))
    # the order's row is preloaded for the cancellation; the completion after it must read the cancelled row again
    handled = {OrderCancelled: handlers.on_order_cancelled, OrderCompleted: handlers.on_order_completed}
    await batched(pool, topics.ORDERS_EVENTS, handled).process([record(0, cancelled), record(1, completed)])
    async with pool.acquire() as conn:
        row = await store.order_row(conn, using.order_id)
        balance = await store.balance(conn, using.shop_id, "C-undone")
    assert row["reservation"] == "released", row
    assert "committed" not in [entry["kind"] for entry in row["entries"]], row["entries"]
    assert balance.used == 0 and balance.available == available, balance


async def test_acceptances_redelivered_or_repeated_in_a_batch_are_duplicates_that_create_and_book_nothing(counted) -> None:
    pool, counter = counted
    handled = {OrderAccepted: handlers.on_order_accepted}
    first, other = accepted_for("C-again", 0), accepted_for("C-again-other", 0)
    await batched(pool, topics.ORDERS_EVENTS, handled).process([record(0, first), record(1, other)])  # each creates its order and account
    created = await rows_created(pool)
    fresh = accepted_for("C-again-fresh", 0)
    metrics = Metrics("points")
    # the batch's statement is given all four (what it claims is known only once it ran); one handler runs
    statements, transactions = await statements_of_batch(pool, counter, topics.ORDERS_EVENTS, handled, [first, fresh, fresh, other], metrics)
    assert transactions == 1 and batch_statements(statements) == {"locks": 1, "locking": 1, "saves": 1, "all": 4}, statements
    outcomes = {
        outcome: metrics.registry.get_sample_value("ordermesh_messages_total", {"topic": topics.ORDERS_EVENTS, "outcome": outcome})
        for outcome in ("processed", "duplicate")
    }
    assert outcomes == {"processed": 1.0, "duplicate": 3.0}, outcomes
    # the new acceptance's order and account are all the batch created
    assert await rows_created(pool) == (created[0] + 1, created[1] + 1)
    async with pool.acquire() as conn:
        for order in (first, fresh, other):
            row = await store.order_row(conn, order.order_id)
            balance = await store.balance(conn, order.shop_id, order.customer.customer_id)
            assert [entry["kind"] for entry in row["entries"]] == ["accrued"], row["entries"]
            assert row["status"] == "provisional" and balance.provisional == row["points"] > 0, (row, balance)
        accrued = await conn.fetch(
            "SELECT convert_from(payload, 'UTF8')::jsonb->>'order_id' AS order_id FROM outbox"
            " WHERE convert_from(payload, 'UTF8')::jsonb->>'type' = 'PointsAccrued'"
        )
    assert sorted(row["order_id"] for row in accrued) == sorted(str(order.order_id) for order in (first, fresh, other))


async def rows_created(pool: asyncpg.Pool) -> tuple[int, int]:
    """How many orders and customer accounts the points database holds."""
    return await pool.fetchval("SELECT count(*) FROM order_points"), await pool.fetchval("SELECT count(*) FROM customer_accounts")


async def test_a_message_the_inbox_holds_creates_neither_its_order_nor_its_customers_account_in_a_batch(counted) -> None:
    pool, counter = counted
    # as if its effect had been kept without them: no handler runs for it, so the batch's statement creates nothing for it
    seen, new = accepted_for("C-seen", 0), accepted_for("C-new", 0)
    await pool.execute("INSERT INTO inbox (message_id, topic) VALUES ($1, $2)", seen.event_id, topics.ORDERS_EVENTS)
    metrics = Metrics("points")
    await batched(pool, topics.ORDERS_EVENTS, {OrderAccepted: handlers.on_order_accepted}, metrics).process([record(0, seen), record(1, new)])
    outcomes = {
        outcome: metrics.registry.get_sample_value("ordermesh_messages_total", {"topic": topics.ORDERS_EVENTS, "outcome": outcome})
        for outcome in ("processed", "duplicate")
    }
    assert outcomes == {"processed": 1.0, "duplicate": 1.0}, outcomes
    async with pool.acquire() as conn:
        assert await store.order_row(conn, seen.order_id) is None
        assert not await store.lock_known_customer(conn, seen.shop_id, "C-seen")
        assert (await store.order_row(conn, new.order_id))["status"] == "provisional"
        assert await store.lock_known_customer(conn, new.shop_id, "C-new")


async def test_a_batch_whose_preload_raises_after_its_statement_is_undone_inbox_rows_too_and_its_messages_go_one_at_a_time(counted) -> None:
    pool, counter = counted
    orders = [accepted_for(f"C-undone-{n}", 0) for n in range(2)]

    async def failing(conn: asyncpg.Connection, messages: list, claim) -> None:
        await handlers.lock_batch(conn, messages, claim)
        raise RuntimeError("the preload failed")

    metrics = Metrics("points")
    subscription = Subscription(
        topics.ORDERS_EVENTS, OrdersEvent, {OrderAccepted: handlers.on_order_accepted}, batched=True,
        preload=ClaimingPreload(failing), finish=write_batch,
    )
    consumer = Consumer(subscription, group_id="ordermesh-points", pool_provider=lambda: pool, metrics=metrics, retry_max_seconds=0.2)
    await consumer.process([record(n, order) for n, order in enumerate(orders)])
    processed = metrics.registry.get_sample_value("ordermesh_messages_total", {"topic": topics.ORDERS_EVENTS, "outcome": "processed"})
    assert processed == 2
    async with pool.acquire() as conn:
        for order in orders:
            row = await store.order_row(conn, order.order_id)
            assert [entry["kind"] for entry in row["entries"]] == ["accrued"] and row["status"] == "provisional", row


async def points_earned(pool, counter, customer_id: str) -> tuple[OrderAccepted, int]:
    """An order of `customer_id` accepted and paid, one message at a time: the order and the balance it left."""
    earning = accepted_for(customer_id, 0)
    await statements_of(pool, counter, handlers.on_order_accepted, earning)
    captured = PaymentCaptured.model_validate(golden_message("PaymentCaptured", order_id=str(earning.order_id), shop_id=earning.shop_id))
    await statements_of(pool, counter, handlers.on_payment_captured, captured)
    async with pool.acquire() as conn:
        return earning, (await store.balance(conn, earning.shop_id, customer_id)).available
