"""What one message costs the orders database: statements and transactions per handled message type of a card order,
counted on a real PostgreSQL through a query logger on every pooled connection (a budget that cannot silently grow)."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from uuid import uuid4

import asyncpg
import pytest
from ordermesh_contracts import (
    DeliveryDateChecked,
    MailSent,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentCaptureFailed,
    PointsConfirmed,
    ShipmentShipped,
    ShopOrderSubmitted,
    StockAllocated,
    PaymentsEvent,
    ShopOrder,
    order_id_for,
    topics,
)
from ordermesh_orders import handlers, store
from ordermesh_servicekit.consuming import Consumer, MessageContext, Subscription
from ordermesh_servicekit.metrics import Metrics
from support import counted_pool, golden_message, statements_of
from doubles import StatementCounter




@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list


class Log:
    def info(self, *args, **kwargs) -> None:
        pass


@pytest.fixture
async def counted(fresh_database: str) -> AsyncIterator[tuple[asyncpg.Pool, StatementCounter]]:
    async with counted_pool(fresh_database, "orders") as counted:
        yield counted


async def test_a_card_order_costs_the_orders_database_a_bounded_number_of_statements_per_message(counted) -> None:
    pool, counter = counted
    submitted = ShopOrderSubmitted.model_validate(golden_message("ShopOrderSubmitted", external_order_no=f"C-{uuid4().hex[:8]}"))
    order_id = order_id_for(submitted.shop_id, submitted.channel.value, submitted.external_order_no)
    about = {"order_id": str(order_id), "shop_id": submitted.shop_id}
    # asyncpg learns the intake's array types once per connection (three statements): a first order teaches it
    first = ShopOrderSubmitted.model_validate(golden_message("ShopOrderSubmitted", external_order_no=f"W-{uuid4().hex[:8]}"))
    await handlers.on_shop_order_submitted(first, MessageContext(pool, first.event_id, "test", log=Log()))
    costs = {"intake": await statements_of(pool, counter, handlers.on_shop_order_submitted, submitted)}
    history = await pool.fetchval("SELECT count(*) FROM order_history WHERE order_id = $1", order_id)
    repeat = submitted.model_copy(update={"event_id": uuid4()})
    costs["repeated intake"] = await statements_of(pool, counter, handlers.on_shop_order_submitted, repeat)
    assert await pool.fetchval("SELECT count(*) FROM order_history WHERE order_id = $1", order_id) == history
    for model in (PaymentAuthorized, DeliveryDateChecked, StockAllocated, ShipmentShipped, PaymentCaptured, PointsConfirmed, MailSent):
        message = model.model_validate(golden_message(model.__name__, **about))
        costs[model.__name__] = await statements_of(pool, counter, handlers.FLAG_HANDLERS[model], message)
    costs["redelivered"] = await statements_of(pool, counter, handlers.FLAG_HANDLERS[MailSent], message)
    no_points = {**submitted.charges.model_dump(), "points_used": 0, "total": submitted.charges.total + submitted.charges.points_used}
    moving = ShopOrderSubmitted.model_validate(golden_message("ShopOrderSubmitted", external_order_no=f"M-{uuid4().hex[:8]}", charges=no_points))
    await handlers.on_shop_order_submitted(moving, MessageContext(pool, moving.event_id, "test", log=Log()))
    about_moving = {"order_id": str(order_id_for(moving.shop_id, moving.channel.value, moving.external_order_no)), "shop_id": moving.shop_id}
    date_ok = DeliveryDateChecked.model_validate(golden_message("DeliveryDateChecked", result="ok", **about_moving))
    costs["DeliveryDateChecked ok, moves on"] = await statements_of(pool, counter, handlers.FLAG_HANDLERS[DeliveryDateChecked], date_ok)
    authorized = PaymentAuthorized.model_validate(golden_message("PaymentAuthorized", **about_moving))
    costs["PaymentAuthorized, moves on"] = await statements_of(pool, counter, handlers.FLAG_HANDLERS[PaymentAuthorized], authorized)
    stage = await pool.fetchval("SELECT stage FROM orders WHERE order_id = $1", date_ok.order_id)
    assert await pool.fetchval("SELECT count(*) FROM orders WHERE order_id = $1", order_id) == 1
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 13
    assert stage == "awaiting_allocation"
    print("\ncost (statements, transactions):", costs)
    assert all(transactions == 1 for _, transactions in costs.values()), costs
    # Before the order was read once with its shop's rules: intake 13, a flag 9, a flag opening a task 11 (plus a pool
    # reset after each), then 6 with the order saved and its history written apart. Now: BEGIN, inbox, the order locked
    # with its rules, the order saved with its history in one statement, (outbox,) COMMIT.
    # Intake (12 before it was load–decide–save): BEGIN, inbox, the shop's watch list, rules and statuses, the order
    # with its tasks, firings and history, outbox, COMMIT; a repeat of a known order writes nothing and publishes nothing.
    statements = {name: count for name, (count, _) in costs.items()}
    # The inbox row is written last, with the outbox rows (one statement fewer for a message that publishes)
    assert statements["intake"] <= 5 and statements["repeated intake"] <= 5, statements
    assert all(statements[name] <= 5 for name in ("PaymentAuthorized", "StockAllocated", "PointsConfirmed", "MailSent")), statements
    # what was captured and what the parcel carried are written with the order's save (6 each when written apart)
    assert statements["PaymentCaptured"] <= 5 and statements["ShipmentShipped"] <= 5, statements
    assert statements["DeliveryDateChecked"] <= 8, statements  # + a task opened and its history, the order read again
    # the handler's work done and rolled back: BEGIN, the order locked, saved, the inbox row found there, ROLLBACK (it
    # was BEGIN, inbox, ROLLBACK when the inbox row came first: a redelivery is rare, a publishing message is not)
    assert statements["redelivered"] <= 5, statements
    # a flag event that moves the order writes its flags and its stage changes with the order in one statement (8, then 7
    # before), and publishes the progress
    assert statements["DeliveryDateChecked ok, moves on"] <= 5 and statements["PaymentAuthorized, moves on"] <= 5, statements


async def test_a_batch_of_flag_events_of_many_orders_costs_one_transaction_and_the_orders_own_statements(counted) -> None:
    pool, counter = counted
    order_ids = await orders_taken_in(pool, 8, "B")
    records = [
        Record(topics.PAYMENTS_EVENTS, n % 6, n, str(order_id).encode(),
               json.dumps(golden_message("PaymentAuthorized", order_id=str(order_id), shop_id="kyoto-tea")).encode(), [("type", b"PaymentAuthorized")])
        for n, order_id in enumerate(order_ids)
    ]
    consumer = flag_consumer(pool, PaymentAuthorized)
    await asyncio.sleep(0)
    counter.statements.clear()
    counter.transactions = 0
    await consumer.process(records)
    await asyncio.sleep(0)
    statements, transactions = len(counter.statements), counter.transactions
    flags = await pool.fetch("SELECT flags->>'card_authorization' AS card FROM orders WHERE order_id = ANY($1::uuid[])", order_ids)
    assert [row["card"] for row in flags] == ["authorized"] * 8
    print(f"\nbatch of 8: {statements} statements, {transactions} transactions")
    assert transactions == 1
    # the eight orders are locked and read in one statement (the batch's preload, writing its inbox rows), not one each
    assert sum(1 for query in counter.statements if LOCKING in query) == 1, counter.statements
    assert sum(1 for query in counter.statements if query.startswith(CLAIMING) and LOCKING in query) == 1, counter.statements
    # BEGIN, the inbox rows written with the orders locked with their rules, the orders saved with their history,
    # COMMIT; one at a time it was 6 per message, then 3 per order in a batch with the history written apart, 2 with
    # each order locked apart, then 1 (its save) with the orders locked together; 5 with the inbox rows apart
    assert statements == 4, counter.statements
    history = await pool.fetch(
        "SELECT order_id, what, cause_id FROM order_history WHERE order_id = ANY($1::uuid[]) AND what = 'PaymentAuthorized'", order_ids
    )
    assert sorted(row["order_id"] for row in history) == sorted(order_ids)
    assert all(row["cause_id"] is not None for row in history)


async def test_a_batch_of_shop_orders_reads_what_decides_them_once_and_writes_each_order_in_one_statement(counted) -> None:
    pool, counter = counted
    await orders_taken_in(pool, 1, "T")  # asyncpg learns the intake's array types once per connection
    golden = golden_message("ShopOrderSubmitted")
    submitted = [
        ShopOrderSubmitted.model_validate(
            golden_message("ShopOrderSubmitted", external_order_no=f"I-{n}-{uuid4().hex[:6]}", customer={**golden["customer"], "customer_id": f"C-{n % 2}"})
        )
        for n in range(4)
    ]
    async with pool.acquire() as conn:
        await store.add_to_watch_list(conn, "kyoto-tea", "C-1", "chargebacks", "staff:test")
    records = [
        Record(topics.SHOP_ORDERS, n, n, order.external_order_no.encode(), order.model_dump_json().encode(), [("type", b"ShopOrderSubmitted")])
        for n, order in enumerate(submitted)
    ]
    consumer = intake_consumer(pool)
    await asyncio.sleep(0)
    counter.reset()
    await consumer.process(records)
    await asyncio.sleep(0)
    statements, transactions = list(counter.statements), counter.transactions
    order_ids = [order_id_for(order.shop_id, order.channel.value, order.external_order_no) for order in submitted]
    assert await pool.fetchval("SELECT count(*) FROM orders WHERE order_id = ANY($1::uuid[])", order_ids) == 4
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", topics.SHOP_UPDATES) >= 4
    flags = await pool.fetch("SELECT flags->>'customer' AS customer FROM orders WHERE order_id = ANY($1::uuid[])", order_ids)
    assert sorted(row["customer"] for row in flags) == ["normal", "normal", "watch_listed", "watch_listed"]
    assert transactions == 1, statements
    # BEGIN, the inbox rows written with the shops' watch lists, rules and statuses read, which orders are known, the
    # orders with their tasks, firings and history and the batch's outbox rows, COMMIT (12 with the basis read and
    # each order inserted apart, 9 with each inserted apart, 7 with the outbox rows apart, 6 with the inbox rows apart)
    assert sum(1 for query in statements if "WATCH_LIST" in query) == 1, statements
    assert sum(1 for query in statements if query.startswith(CLAIMING) and "WATCH_LIST" in query) == 1, statements
    assert sum(1 for query in statements if query.startswith("WITH NEW_ORDER")) == 1, statements
    assert len(statements) == 5, statements


def intake_consumer(pool: asyncpg.Pool) -> Consumer:
    """A consumer of shop orders as the orders service has it: batched, the batch's orders inserted together."""
    subscription = Subscription(
        topics.SHOP_ORDERS, ShopOrder, {ShopOrderSubmitted: handlers.on_shop_order_submitted}, batched=True, **handlers.INTAKE_BATCH
    )
    return Consumer(subscription, group_id="ordermesh-orders", pool_provider=lambda: pool, metrics=Metrics("orders"), retry_max_seconds=0.2)


def shop_order_record(offset: int, order: ShopOrderSubmitted) -> Record:
    return Record(topics.SHOP_ORDERS, 0, offset, order.external_order_no.encode(), order.model_dump_json().encode(), [("type", b"ShopOrderSubmitted")])


async def accepted_in_outbox(pool: asyncpg.Pool, external_order_no: str) -> int:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1", topics.SHOP_UPDATES)
    return sum(1 for row in rows if (update := json.loads(row["payload"]))["type"] == "ShopOrderAccepted" and update["external_order_no"] == external_order_no)


async def test_a_shop_order_sent_twice_in_a_batch_or_known_before_it_is_taken_in_once(counted) -> None:
    pool, _ = counted
    known = ShopOrderSubmitted.model_validate(golden_message("ShopOrderSubmitted", external_order_no=f"K-{uuid4().hex[:6]}"))
    await handlers.on_shop_order_submitted(known, MessageContext(pool, known.event_id, "test", log=Log()))
    twice = ShopOrderSubmitted.model_validate(golden_message("ShopOrderSubmitted", external_order_no=f"D-{uuid4().hex[:6]}"))
    again = [known.model_copy(update={"event_id": uuid4()}), twice, twice.model_copy(update={"event_id": uuid4()})]
    await intake_consumer(pool).process([shop_order_record(n, order) for n, order in enumerate(again)])
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE message_id = ANY($1::uuid[])", [o.event_id for o in again]) == 3
    for order in (known, twice):
        order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
        assert await pool.fetchval("SELECT count(*) FROM orders WHERE order_id = $1", order_id) == 1
        assert await pool.fetchval("SELECT count(*) FROM order_history WHERE order_id = $1 AND what = 'accepted'", order_id) <= 1
        assert await accepted_in_outbox(pool, order.external_order_no) == 1


async def test_a_batch_whose_order_was_taken_in_meanwhile_is_undone_and_taken_in_one_at_a_time(counted, monkeypatch) -> None:
    pool, _ = counted
    meanwhile = ShopOrderSubmitted.model_validate(golden_message("ShopOrderSubmitted", external_order_no=f"M-{uuid4().hex[:6]}"))
    await handlers.on_shop_order_submitted(meanwhile, MessageContext(pool, meanwhile.event_id, "test", log=Log()))
    fresh = ShopOrderSubmitted.model_validate(golden_message("ShopOrderSubmitted", external_order_no=f"F-{uuid4().hex[:6]}"))

    async def nothing_known_yet(conn, order_ids):
        return set()  # as if the other intake committed between the batch's read and its end

    monkeypatch.setattr(store, "known_orders", nothing_known_yet)
    records = [shop_order_record(0, meanwhile.model_copy(update={"event_id": uuid4()})), shop_order_record(1, fresh)]
    await intake_consumer(pool).process(records)
    for order in (meanwhile, fresh):
        order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
        assert await pool.fetchval("SELECT count(*) FROM orders WHERE order_id = $1", order_id) == 1
        assert await accepted_in_outbox(pool, order.external_order_no) == 1
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 3


LOCKING = "SELECT O.ORDER_ID, O.SHOP_ID"
CLAIMING = "WITH CLAIM AS (INSERT INTO INBOX"


async def orders_taken_in(pool: asyncpg.Pool, count: int, prefix: str) -> list:
    """`count` shop orders taken in one at a time: their order ids."""
    order_ids = []
    for n in range(count):
        submitted = ShopOrderSubmitted.model_validate(golden_message("ShopOrderSubmitted", external_order_no=f"{prefix}-{n}-{uuid4().hex[:6]}"))
        await handlers.on_shop_order_submitted(submitted, MessageContext(pool, submitted.event_id, "test", log=Log()))
        order_ids.append(order_id_for(submitted.shop_id, submitted.channel.value, submitted.external_order_no))
    return order_ids


def flag_consumer(pool: asyncpg.Pool, *models, metrics: Metrics | None = None) -> Consumer:
    """A consumer of payments events as the orders service has it: batched, the batch's orders preloaded."""
    subscription = Subscription(
        topics.PAYMENTS_EVENTS, PaymentsEvent, {model: handlers.FLAG_HANDLERS[model] for model in models}, batched=True,
        **handlers.BATCH_ORDERS,
    )
    return Consumer(
        subscription, group_id="ordermesh-orders", pool_provider=lambda: pool, metrics=metrics or Metrics("orders"), retry_max_seconds=0.2
    )


def payments_record(offset: int, model: str, order_id, **fields) -> Record:
    value = golden_message(model, order_id=str(order_id), shop_id="kyoto-tea", **fields)
    return Record(topics.PAYMENTS_EVENTS, 0, offset, str(order_id).encode(), json.dumps(value).encode(), [("type", model.encode())])


async def test_two_events_of_one_order_in_a_batch_both_apply_and_the_second_sees_the_first(counted) -> None:
    pool, counter = counted
    orders = await orders_taken_in(pool, 2, "S")
    twice, once = orders
    # the order's first event takes the preloaded order and gives it back as it will be saved, its second takes it from
    # there (it read the order again after the first's save was written, before): authorized and then captured, each a
    # flag the other must keep, saved once with what was captured; the other order's event in between takes its own
    records = [
        payments_record(0, "PaymentAuthorized", twice),
        payments_record(1, "PaymentAuthorized", once),
        payments_record(2, "PaymentCaptured", twice),
    ]
    await asyncio.sleep(0)
    inbox_before = await pool.fetchval("SELECT count(*) FROM inbox")
    counter.reset()
    await flag_consumer(pool, PaymentAuthorized, PaymentCaptured).process(records)
    await asyncio.sleep(0)
    assert counter.transactions == 1, counter.statements
    assert sum(1 for query in counter.statements if LOCKING in query) == 1, counter.statements
    # BEGIN, the inbox rows written with the orders locked, the orders saved with the batch's outbox rows, COMMIT (5
    # with the inbox rows apart, 6 with the outbox rows apart; 10 when the second wrote the first's save, read the order
    # again and saved it apart, what was captured apart)
    assert len(counter.statements) == 4, counter.statements
    assert await pool.fetchval("SELECT count(*) FROM inbox") == inbox_before + 3
    rows = {row["order_id"]: row for row in await pool.fetch("SELECT order_id, flags, stage FROM orders WHERE order_id = ANY($1::uuid[])", orders)}
    both = json.loads(rows[twice]["flags"])
    assert both["card_authorization"] == "authorized" and both["capture"] == "done", both
    assert json.loads(rows[once]["flags"])["card_authorization"] == "authorized"
    history = await pool.fetch(
        "SELECT what FROM order_history WHERE order_id = $1 AND what IN ('PaymentAuthorized', 'PaymentCaptured') ORDER BY id", twice
    )
    assert [row["what"] for row in history] == ["PaymentAuthorized", "PaymentCaptured"]
    assert await pool.fetchval("SELECT paid_captured FROM orders WHERE order_id = $1", twice) > 0


async def test_an_event_that_writes_its_order_before_saving_it_finds_the_batchs_earlier_save_of_it_written(counted) -> None:
    pool, counter = counted
    (order_id,) = await orders_taken_in(pool, 1, "W")
    (other,) = await orders_taken_in(pool, 1, "X")
    # the failed capture opens a task (written at once, with its history entry): the authorization's save, left for the
    # batch's end, is written before it, so the order's history reads in the order things happened; the capture after
    # it reads the order again (its open task blocks) and its save joins the failure's
    records = [
        payments_record(0, "PaymentAuthorized", order_id),
        payments_record(1, "PaymentAuthorized", other),
        payments_record(2, "PaymentCaptureFailed", order_id),
        payments_record(3, "PaymentCaptured", order_id, amount=1000),
    ]
    await asyncio.sleep(0)
    taken_in = await pool.fetchval("SELECT max(id) FROM order_history")
    counter.reset()
    await flag_consumer(pool, PaymentAuthorized, PaymentCaptureFailed, PaymentCaptured).process(records)
    await asyncio.sleep(0)
    assert counter.transactions == 1, counter.statements
    history = await pool.fetch("SELECT what FROM order_history WHERE order_id = $1 AND id > $2 ORDER BY id", order_id, taken_in)
    assert [row["what"] for row in history] == ["PaymentAuthorized", "task opened", "PaymentCaptureFailed", "PaymentCaptured"]
    row = await pool.fetchrow("SELECT flags, paid_captured FROM orders WHERE order_id = $1", order_id)
    flags = json.loads(row["flags"])
    assert (flags["card_authorization"], flags["capture"], row["paid_captured"]) == ("authorized", "done", 1000)
    assert json.loads(await pool.fetchval("SELECT flags FROM orders WHERE order_id = $1", other))["card_authorization"] == "authorized"
    assert await pool.fetchval("SELECT count(*) FROM order_tasks WHERE order_id = $1 AND kind = 'capture_failed'", order_id) == 1


async def test_a_batch_with_an_event_of_an_unknown_order_is_undone_and_that_event_alone_is_dead_lettered(counted) -> None:
    pool, _ = counted
    submitted = ShopOrderSubmitted.model_validate(golden_message("ShopOrderSubmitted", external_order_no=f"U-{uuid4().hex[:6]}"))
    await handlers.on_shop_order_submitted(submitted, MessageContext(pool, submitted.event_id, "test", log=Log()))
    known = order_id_for(submitted.shop_id, submitted.channel.value, submitted.external_order_no)
    unknown = uuid4()
    consumer = flag_consumer(pool, PaymentAuthorized)
    await consumer.process([payments_record(0, "PaymentAuthorized", unknown), payments_record(1, "PaymentAuthorized", known)])
    assert json.loads(await pool.fetchval("SELECT flags FROM orders WHERE order_id = $1", known))["card_authorization"] == "authorized"
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", topics.PAYMENTS_EVENTS + ".dlq") == 1


async def test_events_redelivered_or_repeated_in_a_batch_are_duplicates_with_no_second_effect(counted) -> None:
    pool, counter = counted
    order_id, other = await orders_taken_in(pool, 2, "R")
    metrics = Metrics("orders")
    consumer = flag_consumer(pool, PaymentAuthorized, PaymentCaptured, metrics=metrics)
    authorized = [payments_record(0, "PaymentAuthorized", order_id), payments_record(1, "PaymentAuthorized", other)]
    await consumer.process(authorized)
    captured = payments_record(3, "PaymentCaptured", order_id, amount=1000)
    # the batch's preload locks the orders of all four (what it claims is not known before it ran), its handlers see one
    again = [replace(authorized[0], offset=2), captured, replace(captured, offset=4), replace(authorized[1], offset=5)]
    await asyncio.sleep(0)
    counter.reset()
    await consumer.process(again)
    await asyncio.sleep(0)
    assert counter.transactions == 1 and len(counter.statements) == 4, counter.statements
    processed = metrics.registry.get_sample_value("ordermesh_messages_total", {"topic": topics.PAYMENTS_EVENTS, "outcome": "processed"})
    duplicate = metrics.registry.get_sample_value("ordermesh_messages_total", {"topic": topics.PAYMENTS_EVENTS, "outcome": "duplicate"})
    assert (processed, duplicate) == (3, 3)
    assert await pool.fetchval("SELECT paid_captured FROM orders WHERE order_id = $1", order_id) == 1000
    history = await pool.fetch(
        "SELECT order_id, what FROM order_history WHERE order_id = ANY($1::uuid[]) AND what LIKE 'Payment%' ORDER BY id", [order_id, other]
    )
    assert [(row["order_id"], row["what"]) for row in history] == [
        (order_id, "PaymentAuthorized"), (other, "PaymentAuthorized"), (order_id, "PaymentCaptured"),
    ]
