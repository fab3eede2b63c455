"""The batch unit of work on a real PostgreSQL: a batch in one transaction, and one record at a time when it fails."""

import asyncio
import json
from collections.abc import Sequence
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from ordermesh_contracts import PaymentAuthorized, PaymentCaptured, PaymentsEvent, topics
from ordermesh_servicekit.database import prime_codecs
from ordermesh_servicekit.consuming import Consumer, MessageContext, PermanentError, Subscription
from ordermesh_servicekit.outbox import OutgoingMessage, outbox_rows
from ordermesh_servicekit.unit_of_work import ClaimingPreload, InboxClaim, NotBatchable
from ordermesh_servicekit.metrics import Metrics
from poison_corpus import golden
from doubles import FakeRecord

DLQ = topics.PAYMENTS_EVENTS + ".dlq"




class Recording:
    """Writes the authorization id of each message in its unit of work and publishes one event; fails on request."""

    def __init__(self, failing: set[str] = frozenset(), via_pool: bool = False) -> None:
        self.failing = failing
        self.via_pool = via_pool
        self.calls = 0

    async def __call__(self, message: PaymentAuthorized, ctx: MessageContext) -> None:
        self.calls += 1
        if self.via_pool or message.authorization_id.startswith("outside"):
            await ctx.pool.fetchval("SELECT 1")
        async with ctx.unit_of_work() as uow:
            await uow.conn.execute("INSERT INTO changes VALUES ($1)", message.authorization_id)
            if message.authorization_id in self.failing:
                raise PermanentError(f"{message.authorization_id} can never succeed")
            uow.publish("test.out.v1", message)


def record(offset: int, authorization_id: str, key: bytes = b"k", **changes: Any) -> FakeRecord:
    value = {**golden("PaymentAuthorized"), "event_id": str(uuid4()), "authorization_id": authorization_id, **changes}
    return FakeRecord(topics.PAYMENTS_EVENTS, 0, offset, key, json.dumps(value).encode(), [("type", value["type"].encode())])


def consumer(pool: asyncpg.Pool, handler, metrics: Metrics, alone=None, preload=None, finish=None, **options: Any) -> Consumer:
    subscription = Subscription(
        topics.PAYMENTS_EVENTS, PaymentsEvent, {PaymentAuthorized: handler}, batched=True, alone=alone, preload=preload,
        finish=finish,
    )
    return Consumer(subscription, group_id="ordermesh-test", pool_provider=lambda: pool, metrics=metrics,
                    retry_max_seconds=0.2, concurrency=4, **options)


def outcome(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value("ordermesh_messages_total", {"topic": topics.PAYMENTS_EVENTS, "outcome": name}) or 0.0


@pytest.fixture
async def counted(pool: asyncpg.Pool) -> Any:
    """The kit's pool, and the BEGINs its connections send from now on."""
    begins: list[str] = []

    def log(query_record) -> None:
        if query_record.query.strip().upper().startswith("BEGIN"):
            begins.append(query_record.query)

    connections = [await pool.acquire() for _ in range(pool.get_max_size())]
    for conn in connections:
        conn.add_query_logger(log)
    for conn in connections:
        await pool.release(conn)
    return pool, begins


@pytest.fixture
async def logged(pool: asyncpg.Pool) -> Any:
    """The kit's pool, its connections knowing the kit's array types (as a service's pool does), and every statement
    they send from now on."""
    statements: list[str] = []
    connections = [await pool.acquire() for _ in range(pool.get_max_size())]
    for conn in connections:
        await prime_codecs(conn)
        conn.add_query_logger(lambda query_record: statements.append(query_record.query.strip()))
    for conn in connections:
        await pool.release(conn)
    return pool, statements


async def test_a_batch_of_many_orders_is_applied_in_one_transaction_with_its_events_in_order(counted) -> None:
    pool, begins = counted
    metrics = Metrics("test")
    batch = [record(n, f"auth-{n}", key=f"order-{n % 3}".encode()) for n in range(9)]
    await consumer(pool, Recording(), metrics).process(batch)
    await asyncio.sleep(0)
    assert len(begins) == 1
    assert outcome(metrics, "processed") == 9
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 9
    published = [json.loads(p)["authorization_id"] for p in await pool.fetchval(
        "SELECT array_agg(payload ORDER BY id) FROM outbox WHERE topic = 'test.out.v1'")]
    lanes = {lane: [a for a in published if int(a.split("-")[1]) % 3 == lane] for lane in range(3)}
    assert all(ids == sorted(ids, key=lambda a: int(a.split("-")[1])) for ids in lanes.values())
    assert sorted(published) == sorted(f"auth-{n}" for n in range(9))


async def test_one_failing_record_undoes_the_batch_and_alone_is_dead_lettered_the_others_applied_once(pool) -> None:
    metrics = Metrics("test")
    handler = Recording(failing={"auth-3"})
    await consumer(pool, handler, metrics, handler_attempts=2).process([record(n, f"auth-{n}", key=f"o{n}".encode()) for n in range(6)])
    assert sorted(r["what"] for r in await pool.fetch("SELECT what FROM changes")) == ["auth-0", "auth-1", "auth-2", "auth-4", "auth-5"]
    assert outcome(metrics, "processed") == 5 and outcome(metrics, "dead_lettered") == 1
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", DLQ) == 1
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'test.out.v1'") == 5


async def test_a_redelivered_batch_is_duplicate_and_a_message_repeated_within_a_batch_is_applied_once(pool) -> None:
    metrics = Metrics("test")
    first = [record(n, f"auth-{n}", key=f"o{n}".encode()) for n in range(3)]
    await consumer(pool, Recording(), metrics).process([*first, FakeRecord(**{**first[0].__dict__, "offset": 9})])
    await consumer(pool, Recording(), metrics).process(first)
    assert outcome(metrics, "processed") == 3 and outcome(metrics, "duplicate") == 4
    assert await pool.fetchval("SELECT count(*) FROM changes") == 3


async def test_a_handler_reaching_for_the_pool_undoes_the_batch_and_its_type_is_handled_one_at_a_time_from_then_on(counted) -> None:
    pool, begins = counted
    metrics = Metrics("test")
    handler = Recording(via_pool=True)
    reader = consumer(pool, handler, metrics)
    await reader.process([record(n, f"auth-{n}", key=f"o{n}".encode()) for n in range(4)])
    assert outcome(metrics, "processed") == 4 and await pool.fetchval("SELECT count(*) FROM changes") == 4
    assert handler.calls == 1 + 4  # the batch stopped at its first handler, then each record alone
    begins.clear()
    await reader.process([record(n, f"later-{n}", key=f"o{n}".encode()) for n in range(10, 14)])
    await asyncio.sleep(0)
    assert handler.calls == 5 + 4 and outcome(metrics, "processed") == 8
    assert len(begins) == 4  # one transaction per record: no batch is tried for this type again


async def test_a_lane_is_batched_up_to_an_invalid_record_and_handled_in_order_after_it(pool) -> None:
    metrics = Metrics("test")
    invalid = FakeRecord(topics.PAYMENTS_EVENTS, 0, 2, b"o1", b"{not json", [("type", b"PaymentAuthorized")])
    lane = [record(1, "first", key=b"o1"), invalid, record(3, "third", key=b"o1")]
    await consumer(pool, Recording(), metrics).process([*lane, record(4, "other", key=b"o2")])
    assert [r["what"] for r in await pool.fetch("SELECT what FROM changes WHERE what <> 'other' ORDER BY ctid")] == ["first", "third"]
    assert outcome(metrics, "processed") == 3 and outcome(metrics, "dead_lettered") == 1


async def test_a_skipped_contract_in_a_batch_is_skipped_without_a_row(pool) -> None:
    metrics = Metrics("test")
    captured = {**golden("PaymentCaptured"), "event_id": str(uuid4())}
    skipped = FakeRecord(topics.PAYMENTS_EVENTS, 0, 5, b"o1", json.dumps(captured).encode(), [("type", b"PaymentCaptured")])
    assert PaymentCaptured.model_validate(captured)
    await consumer(pool, Recording(), metrics).process([record(1, "a", key=b"o1"), skipped, record(2, "b", key=b"o2")])
    assert outcome(metrics, "skipped") == 1 and outcome(metrics, "processed") == 2
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 2


async def test_a_message_declared_to_go_alone_never_joins_a_batch_and_its_key_keeps_its_order(counted) -> None:
    pool, begins = counted
    metrics = Metrics("test")
    handler = Recording()
    reader = consumer(pool, handler, metrics, alone=lambda message: message.authorization_id.startswith("outside"))
    lanes = {b"o1": ["a-1", "outside-1", "a-2"], b"o2": ["b-1", "b-2"], b"o3": ["c-1"]}
    records = [record(n, auth, key=key) for key, ids in lanes.items() for n, auth in enumerate(ids)]
    await reader.process(records)
    await asyncio.sleep(0)
    assert outcome(metrics, "processed") == 6 and handler.calls == 6  # no batch was undone and tried again
    assert len(begins) == 3  # a-1, b-1, b-2, c-1 together; then outside-1 alone; then a-2 after it
    applied = [r["what"] for r in await pool.fetch("SELECT what FROM changes ORDER BY ctid")]
    assert [what for what in applied if what in lanes[b"o1"]] == lanes[b"o1"]
    assert sorted(applied) == sorted(auth for ids in lanes.values() for auth in ids)
    begins.clear()
    await reader.process([record(10 + n, f"later-{n}", key=f"o{n}".encode()) for n in range(4)])
    await asyncio.sleep(0)
    assert len(begins) == 1  # the type was never learned as unbatchable


class ReadCountingRecord(FakeRecord):
    """A record that counts how often its value is read (each decode reads it once)."""

    def __getattribute__(self, name: str) -> Any:
        if name == "value":
            object.__setattr__(self, "reads", object.__getattribute__(self, "__dict__").get("reads", 0) + 1)
        return object.__getattribute__(self, name)


def counting(fake: FakeRecord) -> ReadCountingRecord:
    return ReadCountingRecord(**fake.__dict__)


@pytest.mark.parametrize(
    "lanes, failing",
    [
        ({b"o1": ["lonely-1"]}, set()),  # too small a batch: handled one at a time
        ({b"o1": ["a-1", "outside-1", "a-2"], b"o2": ["b-1"]}, set()),  # stopped at a record that goes alone
        ({b"o1": ["a-1"], b"o2": ["b-1"], b"o3": ["c-1"]}, {"b-1"}),  # undone, then one at a time
    ],
)
async def test_a_record_is_decoded_once_whether_it_is_batched_left_to_go_alone_or_redone_after_an_undone_batch(pool, lanes, failing) -> None:
    metrics = Metrics("test")
    reader = consumer(pool, Recording(failing=failing), metrics, handler_attempts=1, alone=lambda m: m.authorization_id.startswith("outside"))
    records = [counting(record(n, auth, key=key)) for key, ids in lanes.items() for n, auth in enumerate(ids)]
    await reader.process(records)
    assert outcome(metrics, "processed") + outcome(metrics, "dead_lettered") == len(records)
    assert outcome(metrics, "dead_lettered") == len(failing)  # a dead letter reads the value again to keep it
    reads = {auth: r.reads for r, auth in zip(records, [auth for ids in lanes.values() for auth in ids])}
    assert {auth: count for auth, count in reads.items() if auth not in failing} == {auth: 1 for auth in reads if auth not in failing}


class Preloading:
    """A preload reading the batch's `changes` rows in one statement and keeping what it was given; fails on request."""

    def __init__(self, failing: bool = False) -> None:
        self.failing = failing
        self.given: list[list[str]] = []

    async def __call__(self, conn: asyncpg.Connection, messages: list[PaymentAuthorized]) -> dict[str, Any]:
        self.given.append([message.authorization_id for message in messages])
        known = await conn.fetch("SELECT what FROM changes WHERE what = ANY($1::text[])", [m.authorization_id for m in messages])
        if self.failing:
            raise RuntimeError("the preload failed")
        return {"known": {row["what"] for row in known}, "seen": []}


class SeeingPreloaded(Recording):
    """`Recording`, keeping what each message found preloaded in its context."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.found: dict[str, Any] = {}

    async def __call__(self, message: PaymentAuthorized, ctx: MessageContext) -> None:
        self.found[message.authorization_id] = ctx.preloaded
        if ctx.preloaded is not None:
            ctx.preloaded["seen"].append(message.authorization_id)
        await super().__call__(message, ctx)


async def test_a_preload_runs_once_a_batch_with_the_messages_to_process_and_reaches_every_handler_of_the_batch(counted) -> None:
    pool, begins = counted
    metrics = Metrics("test")
    preload, handler = Preloading(), SeeingPreloaded()
    reader = consumer(pool, handler, metrics, preload=preload)
    first = [record(n, f"auth-{n}", key=f"o{n}".encode()) for n in range(3)]
    await reader.process(first[:1])  # alone: nothing preloaded, the handler loads for itself
    assert preload.given == [] and handler.found == {"auth-0": None}
    await reader.process([*first, record(3, "auth-3", key=b"o3")])
    await asyncio.sleep(0)
    assert len(begins) == 2 and outcome(metrics, "processed") == 4 and outcome(metrics, "duplicate") == 1
    assert preload.given == [["auth-1", "auth-2", "auth-3"]]  # the duplicate is not among them
    shared = handler.found["auth-1"]
    assert shared is not None and all(handler.found[a] is shared for a in ("auth-2", "auth-3"))
    assert shared["seen"] == ["auth-1", "auth-2", "auth-3"]  # in the batch's order, on the batch's connection


async def test_a_failing_preload_undoes_the_batch_and_its_records_go_one_at_a_time_without_it(pool) -> None:
    metrics = Metrics("test")
    handler = SeeingPreloaded()
    await consumer(pool, handler, metrics, preload=Preloading(failing=True)).process(
        [record(n, f"auth-{n}", key=f"o{n}".encode()) for n in range(3)]
    )
    assert outcome(metrics, "processed") == 3
    assert handler.found == {f"auth-{n}": None for n in range(3)}
    assert sorted(r["what"] for r in await pool.fetch("SELECT what FROM changes")) == ["auth-0", "auth-1", "auth-2"]


async def test_with_a_preload_one_failing_record_still_undoes_the_batch_and_alone_is_dead_lettered(pool) -> None:
    metrics = Metrics("test")
    preload = Preloading()
    handler = SeeingPreloaded(failing={"auth-2"})
    await consumer(pool, handler, metrics, preload=preload, handler_attempts=1).process(
        [record(n, f"auth-{n}", key=f"o{n}".encode()) for n in range(4)]
    )
    assert len(preload.given) == 1  # the batch, undone; one at a time preloads nothing
    assert outcome(metrics, "processed") == 3 and outcome(metrics, "dead_lettered") == 1
    assert sorted(r["what"] for r in await pool.fetch("SELECT what FROM changes")) == ["auth-0", "auth-1", "auth-3"]
    assert all(handler.found[a] is None for a in ("auth-0", "auth-1", "auth-3"))  # as they were last handled


async def test_a_preload_reaching_for_what_a_batch_cannot_share_makes_its_type_go_one_at_a_time(pool) -> None:
    metrics = Metrics("test")

    preloads = []

    async def preload(conn: asyncpg.Connection, messages: list[PaymentAuthorized]) -> None:
        preloads.append(len(messages))
        raise NotBatchable("the preload needs the pool")

    handler = Recording()
    reader = consumer(pool, handler, metrics, preload=preload)
    await reader.process([record(n, f"auth-{n}", key=f"o{n}".encode()) for n in range(3)])
    assert outcome(metrics, "processed") == 3 and handler.calls == 3
    assert await pool.fetchval("SELECT count(*) FROM changes") == 3
    await reader.process([record(10 + n, f"later-{n}", key=f"o{n}".encode()) for n in range(3)])
    assert outcome(metrics, "processed") == 6 and preloads == [3]  # no batch is tried for this type again


class LeavingWrites:
    """A handler that, in a batch, leaves its row in what was preloaded for the finish; alone it writes it itself."""

    async def __call__(self, message: PaymentAuthorized, ctx: MessageContext) -> None:
        async with ctx.unit_of_work() as uow:
            if ctx.preloaded is not None:
                ctx.preloaded["left"].append(message.authorization_id)
            else:
                await uow.conn.execute("INSERT INTO changes VALUES ($1)", message.authorization_id)


class Finishing:
    """A finish writing every row the batch's handlers left in one statement; fails on request."""

    def __init__(self, failing: bool = False) -> None:
        self.failing = failing
        self.finished: list[list[str]] = []

    async def __call__(self, conn: asyncpg.Connection, preloaded: dict[str, Any], outgoing: Sequence[OutgoingMessage]) -> bool:
        self.finished.append(list(preloaded["left"]))
        await conn.execute("INSERT INTO changes SELECT unnest($1::text[])", preloaded["left"])
        if self.failing:
            raise RuntimeError("the finish failed")
        return False


async def leaving_preload(conn: asyncpg.Connection, messages: list[PaymentAuthorized]) -> dict[str, Any]:
    return {"left": []}


async def test_a_finish_runs_once_after_the_batchs_handlers_with_what_they_left_in_the_same_transaction(counted) -> None:
    pool, begins = counted
    metrics = Metrics("test")
    finish = Finishing()
    reader = consumer(pool, LeavingWrites(), metrics, preload=leaving_preload, finish=finish)
    await reader.process([record(n, f"auth-{n}", key=f"o{n}".encode()) for n in range(4)])
    await asyncio.sleep(0)
    assert len(begins) == 1 and outcome(metrics, "processed") == 4
    assert finish.finished == [["auth-0", "auth-1", "auth-2", "auth-3"]]
    assert sorted(r["what"] for r in await pool.fetch("SELECT what FROM changes")) == ["auth-0", "auth-1", "auth-2", "auth-3"]


class LeavingWritesAndPublishing(LeavingWrites):
    """`LeavingWrites` that also publishes the message it handled."""

    async def __call__(self, message: PaymentAuthorized, ctx: MessageContext) -> None:
        await super().__call__(message, ctx)
        async with ctx.unit_of_work() as uow:
            uow.publish(topics.PAYMENTS_EVENTS + ".copy", message)


class FinishingWithOutbox(Finishing):
    """A finish writing the rows the batch's handlers left and the batch's outbox rows in one statement."""

    async def __call__(self, conn: asyncpg.Connection, preloaded: dict[str, Any], outgoing: Sequence[OutgoingMessage]) -> bool:
        self.finished.append(list(preloaded["left"]))
        published, arguments = outbox_rows(2, outgoing, "true")
        await conn.execute(f"WITH {published} INSERT INTO changes SELECT unnest($1::text[])", preloaded["left"], *arguments)
        return True


async def test_a_finish_may_write_the_batchs_outbox_rows_with_its_own_and_they_are_written_once_in_order(pool) -> None:
    metrics = Metrics("test")
    finish = FinishingWithOutbox()
    await consumer(pool, LeavingWritesAndPublishing(), metrics, preload=leaving_preload, finish=finish).process(
        [record(n, f"auth-{n}", key=f"o{n}".encode()) for n in range(3)]
    )
    assert finish.finished == [["auth-0", "auth-1", "auth-2"]]
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.PAYMENTS_EVENTS + ".copy")
    assert [json.loads(row["payload"])["authorization_id"] for row in rows] == ["auth-0", "auth-1", "auth-2"]


async def test_a_failing_finish_undoes_the_batch_and_its_records_go_one_at_a_time_each_written_once(pool) -> None:
    metrics = Metrics("test")
    finish = Finishing(failing=True)
    await consumer(pool, LeavingWrites(), metrics, preload=leaving_preload, finish=finish).process(
        [record(n, f"auth-{n}", key=f"o{n}".encode()) for n in range(3)]
    )
    assert len(finish.finished) == 1  # the batch, undone; one at a time nothing is left to finish
    assert outcome(metrics, "processed") == 3
    assert sorted(r["what"] for r in await pool.fetch("SELECT what FROM changes")) == ["auth-0", "auth-1", "auth-2"]


class ClaimingRead:
    """A claiming preload: the batch's inbox rows written with its read of the batch's `changes` rows, in one
    statement (or no statement at all, `reads=False`); keeps what it was given and what it found to be processed."""

    def __init__(self, reads: bool = True, failing: bool = False) -> None:
        self.reads = reads
        self.failing = failing
        self.given: list[list[str]] = []
        self.fresh: list[list[str]] = []

    async def __call__(self, conn: asyncpg.Connection, messages: list[PaymentAuthorized], claim: InboxClaim) -> dict[str, Any]:
        self.given.append([message.authorization_id for message in messages])
        if not self.reads:
            return {"left": []}
        claimed, arguments = claim.rows(2)
        rows = claim.read(await conn.fetch(
            f"WITH {claimed}, known AS (SELECT what FROM changes WHERE what = ANY($1::text[])) SELECT * FROM claimed LEFT JOIN known ON true",
            [message.authorization_id for message in messages], *arguments,
        ), "what")
        self.fresh.append([message.authorization_id for message in claim.fresh()])
        if self.failing:
            raise RuntimeError("the preload failed")
        return {"known": {row["what"] for row in rows}, "left": []}


async def test_a_claiming_preload_writes_the_batchs_inbox_rows_with_its_statement_and_duplicates_stay_duplicates(logged) -> None:
    pool, statements = logged
    metrics = Metrics("test")
    preload, finish = ClaimingRead(), Finishing()
    reader = consumer(pool, LeavingWrites(), metrics, preload=ClaimingPreload(preload), finish=finish)
    first = [record(n, f"auth-{n}", key=f"o{n}".encode()) for n in range(3)]
    await reader.process(first[:1])  # alone: its inbox row and its change written one at a time
    await asyncio.sleep(0)
    statements.clear()
    # redelivered, new, new and repeated within the batch
    await reader.process([*first, FakeRecord(**{**first[1].__dict__, "offset": 9})])
    await asyncio.sleep(0)
    batch = list(statements)
    assert preload.given == [["auth-0", "auth-1", "auth-1", "auth-2"]]  # every message (by lane): its claim is not read yet
    assert preload.fresh == [["auth-1", "auth-2"]] and finish.finished == [["auth-1", "auth-2"]]
    assert outcome(metrics, "processed") == 3 and outcome(metrics, "duplicate") == 2
    assert sorted(r["what"] for r in await pool.fetch("SELECT what FROM changes")) == ["auth-0", "auth-1", "auth-2"]
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 3
    # BEGIN, the inbox rows written with the preload's read, the finish, COMMIT (5 with the inbox rows apart)
    assert len(batch) == 4 and batch[1].startswith("WITH claim AS (INSERT INTO inbox"), batch


async def test_a_claiming_preload_that_reads_nothing_leaves_the_inbox_rows_to_the_batch(logged) -> None:
    pool, statements = logged
    metrics = Metrics("test")
    preload, finish = ClaimingRead(reads=False), Finishing()
    first = [record(n, f"auth-{n}", key=f"o{n}".encode()) for n in range(3)]
    await consumer(pool, LeavingWrites(), metrics, preload=ClaimingPreload(preload), finish=finish).process(
        [*first, FakeRecord(**{**first[1].__dict__, "offset": 9})]
    )
    await asyncio.sleep(0)
    batch = list(statements)
    assert outcome(metrics, "processed") == 3 and outcome(metrics, "duplicate") == 1
    assert finish.finished == [["auth-0", "auth-1", "auth-2"]]
    assert sorted(r["what"] for r in await pool.fetch("SELECT what FROM changes")) == ["auth-0", "auth-1", "auth-2"]
    # BEGIN, the inbox rows, the finish, COMMIT
    assert len(batch) == 4 and batch[1].startswith("INSERT INTO inbox"), batch


async def test_a_failing_claiming_preload_undoes_the_batch_with_its_inbox_rows_and_its_records_go_one_at_a_time(pool) -> None:
    metrics = Metrics("test")
    preload, finish = ClaimingRead(failing=True), Finishing()
    await consumer(pool, LeavingWrites(), metrics, preload=ClaimingPreload(preload), finish=finish).process(
        [record(n, f"auth-{n}", key=f"o{n}".encode()) for n in range(3)]
    )
    assert preload.fresh == [["auth-0", "auth-1", "auth-2"]] and finish.finished == []
    assert outcome(metrics, "processed") == 3 and outcome(metrics, "duplicate") == 0
    assert sorted(r["what"] for r in await pool.fetch("SELECT what FROM changes")) == ["auth-0", "auth-1", "auth-2"]


async def test_records_whose_headers_say_skip_are_skipped_without_a_statement_and_the_rest_are_handled_in_order(logged) -> None:
    pool, statements = logged
    metrics, handler = Metrics("test"), Recording()
    unread = [FakeRecord(topics.PAYMENTS_EVENTS, 0, n, b"o1", b"{not even json", [("type", b"PaymentCaptured")]) for n in range(3)]
    await consumer(pool, handler, metrics).process(unread)
    assert outcome(metrics, "skipped") == 3 and handler.calls == 0 and statements == []
    # between two records of one order, a skipped one neither splits the order's lane nor is read
    await consumer(pool, handler, metrics).process([record(10, "first", key=b"o1"), unread[0], record(12, "second", key=b"o1")])
    assert outcome(metrics, "skipped") == 4 and outcome(metrics, "processed") == 2
    assert [r["what"] for r in await pool.fetch("SELECT what FROM changes ORDER BY ctid")] == ["first", "second"]
