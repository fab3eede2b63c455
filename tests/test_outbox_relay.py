"""The outbox relay on the running suite: a row Kafka refuses is moved aside, and readiness tells when the relay is down."""

import asyncio
import json
import tempfile
import uuid
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from ordermesh_contracts import topics
from ordermesh_servicekit.metrics import Metrics
from ordermesh_servicekit.migrations import migrate_service
from ordermesh_servicekit.outbox import OutboxRelay
from ops_cli import cli
from support import eventually, fetch


async def insert_outbox_rows(dsn: str, rows: list[tuple[str, bytes, bytes]]) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        return [
            await conn.fetchval(
                "INSERT INTO outbox (topic, key, headers, payload) VALUES ($1, $2, $3::jsonb, $4) RETURNING id",
                topic, key, json.dumps([["type", "RelayProbe"]]), payload,
            )
            for topic, key, payload in rows
        ]
    finally:
        await conn.close()


def as_owner(stack, service: str) -> str:
    """The superuser DSN on a service's own database."""
    return stack.admin_dsn.rsplit("/", 1)[0] + f"/ordermesh_{service}"


async def readiness(stack, service: str) -> tuple[int, dict]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"http://127.0.0.1:{stack.processes[service].http_port}/readyz")
        return response.status_code, response.json()


async def test_a_row_larger_than_kafka_accepts_is_moved_to_outbox_failed_and_the_rows_after_it_are_published(stack, recorder):
    marker = uuid.uuid4().hex
    before, after = f'{{"probe": "before-{marker}"}}'.encode(), f'{{"probe": "after-{marker}"}}'.encode()
    huge = b'{"probe": "' + b"x" * 2_000_000 + b'"}'
    before_id, huge_id, after_id = await insert_outbox_rows(
        stack.service_dsns["notify"],
        [(topics.OPS_REPLIES, b"probe", before), (topics.OPS_REPLIES, b"probe", huge), (topics.OPS_REPLIES, b"probe", after)],
    )

    def published():
        values = {m.value for m in recorder.messages if m.topic == topics.OPS_REPLIES}
        return before in values and after in values

    await eventually(published, timeout=60)
    [failed] = await fetch(stack.service_dsns["notify"], "SELECT id, topic, length(payload) AS size, error FROM outbox_failed WHERE id = $1", huge_id)
    assert failed["topic"] == topics.OPS_REPLIES and failed["size"] == len(huge)
    assert "MessageSizeTooLarge" in failed["error"]

    async def none_left() -> bool:  # a published row is deleted with the relay's next read, a poll interval later at most
        query = "SELECT id FROM outbox WHERE id = ANY($1::bigint[])"
        return await fetch(stack.service_dsns["notify"], query, [before_id, huge_id, after_id]) == []

    await eventually(none_left, timeout=10)
    assert not any(m.value == huge for m in recorder.messages)
    status, body = await readiness(stack, "notify")
    assert status == 200 and body["checks"]["outbox_relay"] is True


async def test_readiness_is_false_while_the_relay_cannot_work_and_true_again_once_it_recovers(stack, recorder):
    role = (await fetch(stack.service_dsns["points"], "SELECT current_user AS role"))[0]["role"]
    owner = await asyncpg.connect(as_owner(stack, "points"))
    marker = f'{{"probe": "during-outage-{uuid.uuid4().hex}"}}'.encode()
    try:
        await owner.execute(f'REVOKE SELECT ON outbox FROM "{role}"')

        async def not_ready():
            status, body = await readiness(stack, "points")
            return status == 503 and body["checks"]["outbox_relay"] is False and body

        body = await eventually(not_ready, timeout=60)
        assert body["checks"]["database"] is True and body["checks"]["kafka"] is True
        await owner.execute(  # the service role may not read the outbox now, so no RETURNING
            "INSERT INTO outbox (topic, key, headers, payload) VALUES ($1, $2, $3::jsonb, $4)",
            topics.OPS_REPLIES, b"probe", json.dumps([["type", "RelayProbe"]]), marker,
        )
    finally:
        await owner.execute(f'GRANT SELECT ON outbox TO "{role}"')
        await owner.close()

    async def ready():
        status, body = await readiness(stack, "points")
        return status == 200 and body["checks"]["outbox_relay"] is True

    await eventually(ready, timeout=60)
    await eventually(lambda: any(m.value == marker for m in recorder.messages if m.topic == topics.OPS_REPLIES), timeout=60)


async def _moved_aside(dsn: str, payloads: list[bytes]) -> list[int]:
    """Rows as the relay leaves them in `outbox_failed` (the move itself is tested above), ids from the outbox's sequence."""
    conn = await asyncpg.connect(dsn)
    try:
        ids = []
        for payload in payloads:
            row_id = await conn.fetchval("SELECT nextval(pg_get_serial_sequence('outbox', 'id'))")
            await conn.execute(
                "INSERT INTO outbox_failed (id, topic, key, headers, payload, created_at, error) VALUES ($1, $2, $3, $4::jsonb, $5, now(), $6)",
                row_id, topics.OPS_REPLIES, b"probe", json.dumps([["type", "RelayProbe"]]), payload,
                "UnknownTopicOrPartitionError: the topic did not exist yet",
            )
            ids.append(row_id)
        return ids
    finally:
        await conn.close()


async def _failed_gauge(stack, service: str) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{stack.processes[service].http_port}/metrics")).text
    [value] = [line.split()[-1] for line in text.splitlines() if line.startswith("ordermesh_outbox_failed_pending ")]
    return float(value)


async def test_staff_list_requeue_and_discard_rows_the_relay_moved_aside_and_a_gauge_counts_those_waiting(stack, recorder):
    dsn = stack.service_dsns["points"]
    marker = uuid.uuid4().hex
    retried, dropped = f'{{"probe": "retry-{marker}"}}'.encode(), f'{{"probe": "discard-{marker}"}}'.encode()
    retry_id, discard_id = await _moved_aside(dsn, [retried, dropped])
    await eventually(lambda: _at_least(stack, 2), timeout=60)

    listed = cli(stack, "outbox", "failed", "--service", "points", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert {f"points:{retry_id}", f"points:{discard_id}"} <= set(rows)
    assert rows[f"points:{retry_id}"]["error"].startswith("UnknownTopicOrPartitionError")
    assert "payload" not in rows[f"points:{retry_id}"] and rows[f"points:{retry_id}"]["type"] == "RelayProbe"

    requeued = cli(stack, "outbox", "retry", f"points:{retry_id}", "--reason", "topic created", "--by", "e2e")
    assert requeued.returncode == 0, requeued.stderr
    await eventually(lambda: any(m.topic == topics.OPS_REPLIES and m.value == retried for m in recorder.messages), timeout=60)
    assert not any(m.value == dropped for m in recorder.messages)

    discarded = cli(stack, "outbox", "discard", f"points:{discard_id}", "--reason", "probe, not needed", "--by", "e2e")
    assert discarded.returncode == 0 and "discarded 1" in discarded.stdout, discarded.stderr

    decided = {r["id"]: r for r in await fetch(dsn, "SELECT id, status, decided_by, reason, requeued_as FROM outbox_failed WHERE id = ANY($1::bigint[])", [retry_id, discard_id])}
    assert (decided[retry_id]["status"], decided[retry_id]["decided_by"], decided[retry_id]["reason"]) == ("requeued", "e2e", "topic created")
    assert decided[retry_id]["requeued_as"] is not None
    assert (decided[discard_id]["status"], decided[discard_id]["reason"]) == ("discarded", "probe, not needed")
    assert not any(m.value == dropped for m in recorder.messages)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.processes['points'].http_port}", timeout=10) as client:
        auth = {"Authorization": f"Bearer {stack.api_token}"}
        pending = (await client.get("/api/outbox/failed", headers=auth)).json()["rows"]
        assert not {retry_id, discard_id} & {row["id"] for row in pending}
        again = await client.post("/api/outbox/failed/retry", json={"ids": [retry_id, discard_id], "by": "e2e"}, headers=auth)
        assert again.status_code == 200 and again.json() == {"requeued": []}  # decided rows are not re-queued
        assert (await client.post("/api/outbox/failed/retry", json={"all": True, "by": "x"})).status_code == 401
        for body in ({"ids": [-1], "by": "x"}, {"all": "yes", "by": "x"}, {"ids": [1], "all": True, "by": "x"}, {"ids": [1]},
                     {"ids": [10**30], "by": "x"}, {"ids": [1], "by": "x", "extra": 1}):
            answer = await client.post("/api/outbox/failed/retry", json=body, headers=auth)
            assert answer.status_code == 422 and answer.json()["reason"], (body, answer.text)
        assert (await client.post("/api/outbox/failed/discard", json={"ids": [1], "by": "x"}, headers=auth)).status_code == 422
        assert (await client.get("/api/outbox/failed?status=bogus", headers=auth)).status_code == 400


async def _at_least(stack, count: int) -> bool:
    return await _failed_gauge(stack, "points") >= count


async def test_a_backlog_is_published_in_order_each_round_deleting_what_the_last_one_published_as_it_reads_the_next(
    stack, recorder, monkeypatch
):
    marker = uuid.uuid4().hex
    payloads = [f'{{"probe": "{marker}-{n}"}}'.encode() for n in range(1000)]
    name = f"relay_{marker[:12]}"
    await fetch(stack.admin_dsn, f'CREATE DATABASE "{name}"')
    dsn = stack.admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    conn = await asyncpg.connect(dsn)
    try:
        await migrate_service(conn, "relay_probe", Path(tempfile.mkdtemp()))
        await conn.executemany(
            "INSERT INTO outbox (topic, key, headers, payload) VALUES ($1, $2, $3::jsonb, $4)",
            [(topics.OPS_REPLIES, b"relay-probe", json.dumps([["type", "RelayProbe"]]), payload) for payload in payloads],
        )
    finally:
        await conn.close()
    # What the relay's own connection sends (counting the database's committed transactions also counted autovacuum's
    # visits, at times of its choosing: 19 to 22 against the relay's 17).
    relay_statements: list[str] = []
    connect = asyncpg.connect

    async def connect_observed(*args, **kwargs):
        opened = await connect(*args, **kwargs)
        if args[:1] == (dsn,):
            opened.add_query_logger(lambda query: relay_statements.append(" ".join(query.query.split())))
        return opened

    monkeypatch.setattr(asyncpg, "connect", connect_observed)
    producer = AIOKafkaProducer(**stack.kafka_options, acks="all", enable_idempotence=True)
    await producer.start()
    relay = OutboxRelay(dsn=dsn, producer=producer, metrics=Metrics("relay_probe"), batch_size=100, poll_seconds=30, retry_max_seconds=1)
    relay.start()
    try:
        mine = lambda: [m.value for m in recorder.messages if m.topic == topics.OPS_REPLIES and m.value.startswith(b'{"probe": "' + marker.encode())]
        await eventually(lambda: len(mine()) == len(payloads), timeout=60)
        await eventually(lambda: relay.healthy and relay.is_leader, timeout=10)
    finally:
        await relay.stop()
        await producer.stop()
        monkeypatch.undo()
    assert mine() == payloads  # in order, each once
    left = await fetch(dsn, "SELECT count(*) AS n FROM outbox")
    await fetch(stack.admin_dsn, f'DROP DATABASE "{name}" WITH (FORCE)')
    assert left[0]["n"] == 0
    rounds = [q for q in relay_statements if q.startswith("WITH published AS (DELETE FROM outbox")]
    forgotten = [q for q in relay_statements if q.startswith("DELETE FROM outbox")]
    # one statement a round: 10 rounds that each delete the last one's rows and read the next 100, and 1 that deletes
    # the last 100 and finds nothing (or, stopped before it, the stopping relay deletes them). It was a read and a
    # delete a round. Besides them: the leadership lock, LISTEN and asyncpg's type introspection (3), none on the outbox
    assert len(rounds) >= 10 and len(rounds) + len(forgotten) == 11, relay_statements
    others = [q for q in relay_statements if q not in rounds and q not in forgotten]
    assert len(others) <= 6 and not [q for q in others if "FROM outbox" in q], others
