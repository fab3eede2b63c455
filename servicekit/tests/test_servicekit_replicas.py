"""Parked messages, partition fences and once-per-period jobs on a real PostgreSQL (the parts replicas rely on)."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from ordermesh_contracts import PaymentAuthorized, PaymentCaptured, topics
from ordermesh_contracts.payments import PaymentsEvent
from ordermesh_servicekit.consuming import Consumer, MessageContext, Subscription
from ordermesh_servicekit.fencing import PartitionFence, try_partition_lock, unlock_partition
from ordermesh_servicekit.jobs import claim_period, run_every
from ordermesh_servicekit.metrics import Metrics
from ordermesh_servicekit.migrations import migrate_service
from ordermesh_servicekit.parking import DependencyMissing, Parking
from doubles import FakeRecord

DATA = Path(__file__).parent / "data"
ORDER_ID = "b1cd6279-21ed-5ee8-bbf1-67df6bc3dd45"


@pytest.fixture
async def pool(fresh_database: str, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "0001_payments.sql").write_text(
        "CREATE TABLE payments (order_id uuid PRIMARY KEY);"
        "CREATE TABLE applied (n serial PRIMARY KEY, what text NOT NULL);"
    )
    async with asyncpg.create_pool(fresh_database, min_size=1, max_size=6) as created:
        async with created.acquire() as conn:
            await migrate_service(conn, "test", tmp_path / "m")
        yield created




def authorized(offset: int, topic: str = topics.PAYMENTS_EVENTS, **changes: Any) -> FakeRecord:
    raw = {**json.loads((DATA / "payment_authorized.json").read_text()), "event_id": str(uuid4()), **changes}
    return FakeRecord(topic, 2, offset, ORDER_ID.encode(), json.dumps(raw).encode(), [("type", raw["type"].encode())])


async def needs_payment(message: PaymentAuthorized, ctx: MessageContext) -> None:
    """Applies the message only once the order's payment row exists, as payments' handlers do."""
    async with ctx.unit_of_work() as uow:
        if not await uow.conn.fetchval("SELECT true FROM payments WHERE order_id = $1", message.order_id):
            raise DependencyMissing(message.order_id, f"no payment for order {message.order_id} yet")
        await uow.conn.execute("INSERT INTO applied (what) VALUES ($1)", message.authorization_id)


async def creates_payment(message: PaymentCaptured, ctx: MessageContext) -> None:
    async with ctx.unit_of_work() as uow:
        await uow.conn.execute("INSERT INTO payments VALUES ($1)", message.order_id)


def consumers(pool: asyncpg.Pool, parking: Parking) -> tuple[Consumer, Consumer]:
    """One consumer of a topic whose messages depend on another topic's, and one of that other topic."""
    dependent = Subscription(topics.PAYMENTS_EVENTS, PaymentsEvent, {PaymentAuthorized: needs_payment})
    dependency = Subscription("other.events.v1", PaymentsEvent, {PaymentCaptured: creates_payment})
    return tuple(
        Consumer(s, group_id="test", pool_provider=lambda: pool, metrics=Metrics("test"), retry_max_seconds=0.4, parking=parking)
        for s in (dependent, dependency)
    )


def captured(offset: int) -> FakeRecord:
    raw = {
        **json.loads((DATA / "payment_authorized.json").read_text()), "event_id": str(uuid4()), "type": "PaymentCaptured",
        "capture_id": "cap_1",
    }
    raw.pop("method"), raw.pop("authorization_id")
    return FakeRecord("other.events.v1", 0, offset, ORDER_ID.encode(), json.dumps(raw).encode())


async def queries_containing(pool: asyncpg.Pool, text: str) -> list[str]:
    """The statements containing `text` that any of the pool's connections runs from now on (filled as they run)."""
    seen: list[str] = []
    connections = [await pool.acquire() for _ in range(pool.get_max_size())]
    for conn in connections:
        conn.add_query_logger(lambda q: seen.append(q.query) if text in q.query else None)
        await pool.release(conn)
    return seen


async def test_a_message_whose_dependency_has_not_arrived_is_parked_and_applied_once_it_does(pool) -> None:
    parking = Parking(lambda: pool, retry_seconds=60, max_seconds=3600)
    dependent, dependency = consumers(pool, parking)
    await dependent.process([authorized(41, authorization_id="auth_first"), authorized(42, authorization_id="auth_second")])
    assert await pool.fetchval("SELECT count(*) FROM applied") == 0
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 0
    parked = await pool.fetch("SELECT kafka_offset, waiting_for FROM parked ORDER BY id")
    assert [(p["kafka_offset"], p["waiting_for"]) for p in parked] == [(41, ORDER_ID), (42, ORDER_ID)]

    await dependency.process([captured(7)])
    await parking.release()

    assert [r["what"] for r in await pool.fetch("SELECT what FROM applied ORDER BY n")] == ["auth_first", "auth_second"]
    assert await pool.fetchval("SELECT count(*) FROM parked") == 0
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 3


async def test_release_looks_for_nothing_after_a_batch_found_no_parked_record_and_parks_here_are_released(pool) -> None:
    parking = Parking(lambda: pool, retry_seconds=60, max_seconds=3600)
    dependent, dependency = consumers(pool, parking)
    claims = await queries_containing(pool, "UPDATE parked")
    await pool.execute("INSERT INTO payments VALUES ($1)", ORDER_ID)
    await dependent.process([authorized(40, authorization_id="auth_applied")])
    await parking.release()
    await asyncio.sleep(0)
    assert claims == []
    await pool.execute("DELETE FROM payments")

    await dependent.process([authorized(41, authorization_id="auth_parked")])
    await dependency.process([captured(7)])
    await parking.release()

    assert [r["what"] for r in await pool.fetch("SELECT what FROM applied ORDER BY n")] == ["auth_applied", "auth_parked"]
    assert await pool.fetchval("SELECT count(*) FROM parked") == 0


async def test_a_record_another_replica_parked_after_this_one_looked_is_released_by_the_sweep(pool) -> None:
    parking, other_replica = (Parking(lambda: pool, retry_seconds=60, max_seconds=3600) for _ in range(2))
    dependent, dependency = consumers(pool, parking)
    other_dependent, _ = consumers(pool, other_replica)
    await dependency.process([captured(7)])  # finds nothing parked: this replica's release looks for nothing
    await pool.execute("DELETE FROM payments")
    await other_dependent.process([authorized(41, authorization_id="auth_parked")])
    await pool.execute("INSERT INTO payments VALUES ($1)", ORDER_ID)
    await parking.release()
    assert await pool.fetchval("SELECT count(*) FROM parked") == 1

    await parking.sweep()

    assert [r["what"] for r in await pool.fetch("SELECT what FROM applied ORDER BY n")] == ["auth_parked"]
    assert await pool.fetchval("SELECT count(*) FROM parked") == 0


async def test_batches_look_for_parked_records_again_only_once_something_is_parked_here_or_partitions_are_assigned(pool) -> None:
    parking, other_replica = (Parking(lambda: pool, retry_seconds=60, max_seconds=3600) for _ in range(2))
    dependent, _ = consumers(pool, parking)
    other_dependent, _ = consumers(pool, other_replica)
    looks = await queries_containing(pool, "FROM parked WHERE topic")
    await pool.execute("INSERT INTO payments VALUES ($1)", ORDER_ID)
    await dependent.process([authorized(40, authorization_id="auth_first")])  # finds nothing parked
    await dependent.process([authorized(41, authorization_id="auth_second")])
    await asyncio.sleep(0)
    assert len(looks) == 1, looks
    # the other replica, holding the partition then, parks a record of the order; the partition is then assigned here
    await pool.execute("DELETE FROM payments")
    await other_dependent.process([authorized(42, authorization_id="auth_parked_there")])
    await pool.execute("INSERT INTO payments VALUES ($1)", ORDER_ID)
    parking.assignment_changed()
    await dependent.process([authorized(43, authorization_id="auth_after")])
    await asyncio.sleep(0)
    assert len(looks) == 3, looks  # the other replica's batch looked, and this one's after the assignment
    assert [r["what"] for r in await pool.fetch("SELECT what FROM applied ORDER BY n")] == ["auth_first", "auth_second"]
    assert [r["kafka_offset"] for r in await pool.fetch("SELECT kafka_offset FROM parked ORDER BY id")] == [42, 43]


async def test_a_later_message_of_a_parked_order_waits_behind_it_even_from_a_later_batch(pool) -> None:
    parking = Parking(lambda: pool, retry_seconds=60, max_seconds=3600)
    dependent, dependency = consumers(pool, parking)
    await dependent.process([authorized(41, authorization_id="auth_first")])
    await pool.execute("INSERT INTO payments VALUES ($1)", ORDER_ID)
    await dependent.process([authorized(42, authorization_id="auth_second")])
    assert await pool.fetchval("SELECT count(*) FROM applied") == 0
    assert await pool.fetchval("SELECT count(*) FROM parked") == 2

    await parking.sweep()

    assert [r["what"] for r in await pool.fetch("SELECT what FROM applied ORDER BY n")] == ["auth_first", "auth_second"]
    assert await pool.fetchval("SELECT count(*) FROM parked") == 0


async def test_a_record_redelivered_while_parked_is_parked_once(pool) -> None:
    parking = Parking(lambda: pool, retry_seconds=60, max_seconds=3600)
    dependent, _ = consumers(pool, parking)
    record = authorized(41)
    await dependent.process([record])
    await dependent.process([record])
    assert await pool.fetchval("SELECT count(*) FROM parked") == 1
    assert await pool.fetchval("SELECT attempts FROM parked") == 1


async def test_a_parked_message_whose_dependency_never_comes_is_dead_lettered_with_the_reason(pool) -> None:
    parking = Parking(lambda: pool, retry_seconds=60, max_seconds=0.5)
    dependent, _ = consumers(pool, parking)
    await dependent.process([authorized(41)])
    await parking.sweep()
    assert await pool.fetchval("SELECT count(*) FROM parked") == 1
    await asyncio.sleep(0.6)

    await parking.sweep()

    assert await pool.fetchval("SELECT count(*) FROM parked") == 0
    [letter] = await pool.fetch("SELECT topic, headers FROM outbox")
    headers = {k: v for k, v in json.loads(letter["headers"])}
    assert letter["topic"] == "payments.events.v1.dlq"
    assert headers["dlq.error_class"] == "DependencyMissing"
    assert f"still waiting for {ORDER_ID}" in headers["dlq.error_message"]
    assert await pool.fetchval("SELECT count(*) FROM applied") == 0


async def test_a_parked_message_is_left_alone_while_another_replica_handles_its_partition(pool) -> None:
    parking = Parking(lambda: pool, retry_seconds=60, max_seconds=3600)
    dependent, _ = consumers(pool, parking)
    await dependent.process([authorized(41)])
    await pool.execute("INSERT INTO payments VALUES ($1)", ORDER_ID)
    async with pool.acquire() as other_replica:
        assert await try_partition_lock(other_replica, topics.PAYMENTS_EVENTS, 2)
        await parking.sweep()
        assert await pool.fetchval("SELECT count(*) FROM parked") == 1
        await unlock_partition(other_replica, topics.PAYMENTS_EVENTS, 2)
    await parking.sweep()
    assert await pool.fetchval("SELECT count(*) FROM parked") == 0
    assert await pool.fetchval("SELECT count(*) FROM applied") == 1


async def test_a_second_replica_given_a_partition_mid_batch_waits_until_the_first_has_finished(pool, fresh_database) -> None:
    first, second = PartitionFence(fresh_database), PartitionFence(fresh_database)
    events: list[str] = []
    first_holds = asyncio.Event()

    async def old_owner() -> None:
        async with first.holding([("t.v1", 3), ("t.v1", 1)]):
            first_holds.set()
            await asyncio.sleep(0.5)
            events.append("first done")

    async def new_owner() -> None:
        await first_holds.wait()
        async with second.holding([("t.v1", 1)]):
            events.append("second starts")
        async with second.holding([("t.v1", 2)]):
            events.append("other partition")

    started = time.monotonic()
    await asyncio.gather(old_owner(), new_owner())
    assert events == ["first done", "second starts", "other partition"]
    assert time.monotonic() - started >= 0.5
    await first.close()
    await second.close()


async def test_a_replica_that_dies_holding_a_fence_holds_nobody_up(fresh_database) -> None:
    dying, survivor = PartitionFence(fresh_database), PartitionFence(fresh_database)
    async with dying.holding([("t.v1", 0)]):
        dying._conn.terminate()  # as a SIGKILL closes the connection
        async with asyncio.timeout(5):
            async with survivor.holding([("t.v1", 0)]):
                pass
    await survivor.close()


async def test_a_period_is_claimed_by_one_replica_only(pool) -> None:
    claims = await asyncio.gather(*(claim_period(pool, "checks", 3600, f"replica-{n}") for n in range(4)))
    assert sorted(claims) == [False, False, False, True]
    assert await pool.fetchval("SELECT count(*) FROM job_runs") == 1


async def test_a_job_run_by_three_replicas_runs_once_per_period(pool) -> None:
    runs: list[float] = []

    async def job() -> None:
        runs.append(time.monotonic())

    replicas = [asyncio.create_task(run_every("expiry", 1.0, job, lambda: pool)) for _ in range(3)]
    await asyncio.sleep(3.5)
    for task in replicas:
        task.cancel()
    await asyncio.gather(*replicas, return_exceptions=True)
    periods = await pool.fetchval("SELECT count(*) FROM job_runs WHERE job = 'expiry'")
    assert 3 <= len(runs) == periods <= 5


async def test_a_fence_over_many_partitions_of_many_topics_is_taken_and_given_back_in_one_statement_each(fresh_database) -> None:
    fence = PartitionFence(fresh_database)
    pairs = [(topic, partition) for topic in ("a.v1", "b.v1", "c.v1") for partition in range(6)]
    statements: list[str] = []
    other = await asyncpg.connect(fresh_database)
    try:
        async with fence.holding(reversed(pairs)):
            fence._conn.add_query_logger(lambda record: statements.append(record.query))
            for topic, partition in pairs:
                assert not await try_partition_lock(other, topic, partition)
        await asyncio.sleep(0)  # query loggers are called soon after each query
        for topic, partition in pairs:
            assert await try_partition_lock(other, topic, partition)
            await unlock_partition(other, topic, partition)
        async with fence.holding(pairs[:2]):
            pass
        await asyncio.sleep(0)
        assert len(statements) == 3, statements  # the unlock of the first batch, the lock and unlock of the second
    finally:
        await other.close()
        await fence.close()


async def test_kept_fences_cover_later_batches_without_a_statement_and_are_given_back_once(fresh_database) -> None:
    fence = PartitionFence(fresh_database)
    statements: list[str] = []
    other = await asyncpg.connect(fresh_database)

    async def free(topic: str, partition: int) -> bool:
        if await try_partition_lock(other, topic, partition):
            await unlock_partition(other, topic, partition)
            return True
        return False

    try:
        async with fence.holding([("t.v1", 2), ("t.v1", 0)]):
            fence._conn.add_query_logger(lambda record: statements.append(record.query))
            fence.keep()
        assert not await free("t.v1", 0) and not await free("t.v1", 2)  # kept after the block
        async with fence.holding([("t.v1", 2)]):
            fence.keep()
        await asyncio.sleep(0)
        assert statements == []  # a batch within what is kept takes nothing
        async with fence.holding([("t.v1", 1)]):
            pass  # not kept: this block gives back all it held
        await asyncio.sleep(0)
        assert len(statements) == 2, statements  # one statement to give back and take again, in order; one to release
        assert [await free("t.v1", partition) for partition in range(3)] == [True, True, True]

        async with fence.holding([("t.v1", 4)]):
            fence.keep()
        await fence.release_kept()
        assert await free("t.v1", 4)
    finally:
        await other.close()
        await fence.close()


async def test_a_replica_given_a_kept_partition_waits_until_the_old_owner_gives_it_back(fresh_database) -> None:
    old_owner, new_owner = PartitionFence(fresh_database), PartitionFence(fresh_database)
    events: list[str] = []
    async with old_owner.holding([("t.v1", 1)]):
        old_owner.keep()

    async def take_over() -> None:
        async with new_owner.holding([("t.v1", 1)]):
            events.append("new owner starts")

    taking_over = asyncio.create_task(take_over())
    await asyncio.sleep(0.3)
    events.append("old owner gives back")
    await old_owner.release_kept()
    async with asyncio.timeout(5):
        await taking_over
    assert events == ["old owner gives back", "new owner starts"]
    await old_owner.close()
    await new_owner.close()
