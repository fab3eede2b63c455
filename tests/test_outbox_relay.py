"""The outbox relay on the running suite: a row Kafka refuses is moved aside, and readiness tells when the relay is down."""

import json
import uuid

import asyncpg
import httpx

from ordermesh_contracts import topics
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
    left = await fetch(stack.service_dsns["notify"], "SELECT id FROM outbox WHERE id = ANY($1::bigint[])", [before_id, huge_id, after_id])
    assert left == []
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
