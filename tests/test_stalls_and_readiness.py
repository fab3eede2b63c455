"""Stalls on the running suite: a batch that cannot finish is given back to Kafka, never committed past, and
/readyz says so; /readyz goes false while Kafka does not answer and true again after. The session stack is left as
it was found (privileges granted back, the broker resumed, every service ready) whatever happens."""

import asyncio
import os
import re
import signal
import uuid

import asyncpg
import httpx

from ordermesh_contracts import order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_devstack.stack import SERVICES
from support import eventually, fetch, publish_raw

_SOUGHT_BACK = re.compile(r'^ordermesh_consumer_batches_sought_back_total\{topic="([^"]+)"\} (\S+)$', re.M)


async def _readiness(stack, service: str) -> tuple[int, dict]:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"http://127.0.0.1:{stack.processes[service].http_port}/readyz")
    except httpx.TransportError:
        return 0, {}
    return response.status_code, response.json()


async def _sought_back(stack, service: str, topic: str) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{stack.processes[service].http_port}/metrics")).text
    return sum(float(value) for name, value in _SOUGHT_BACK.findall(text) if name == topic)


async def _all_ready(stack) -> bool:
    statuses = [(await _readiness(stack, service))[0] for service in SERVICES]
    return all(status == 200 for status in statuses)


async def test_a_batch_that_cannot_finish_is_sought_back_and_its_record_processed_once_it_can_never_skipped(stack, recorder):
    # The points role may not write its outbox: the handler fails, and so does the dead letter (it goes through the
    # outbox too), so the record has no outcome; the batch must be read again, not committed past.
    dsn = stack.service_dsns["points"]
    role = (await fetch(dsn, "SELECT current_user AS role"))[0]["role"]
    owner = await asyncpg.connect(stack.admin_dsn.rsplit("/", 1)[0] + "/ordermesh_points")
    order = demo_order(1_600_001).model_copy(update={"external_order_no": f"STALL-{uuid.uuid4().hex[:8]}"})
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    before = await _sought_back(stack, "points", topics.ORDERS_EVENTS)
    try:
        await owner.execute(f'REVOKE INSERT ON outbox FROM "{role}"')
        await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
        await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=order_id, timeout=90)

        async def stalled():
            status, body = await _readiness(stack, "points")
            return status == 503 and body["checks"]["consumers"] is False and body

        body = await eventually(stalled, timeout=90)
        assert body["checks"]["database"] is True and body["checks"]["kafka"] is True
        await eventually(lambda: _sought_back_more(stack, before, 2), timeout=90)  # read again, and again
        assert await fetch(dsn, "SELECT 1 FROM ledger WHERE order_id = $1", order_id) == []
    finally:
        await owner.execute(f'GRANT INSERT ON outbox TO "{role}"')
        await owner.close()

    accrued = await eventually(lambda: fetch(dsn, "SELECT kind FROM ledger WHERE order_id = $1 AND kind = 'accrued'", order_id), timeout=120)
    assert len(accrued) == 1
    await eventually(lambda: _readiness_of(stack, "points", 200), timeout=60)
    dead = recorder.on(f"{topics.ORDERS_EVENTS}.dlq")
    assert not [m for m in dead if str(order_id) in m.value.decode(errors="replace")], "the record was dead-lettered"


async def _sought_back_more(stack, before: float, more: int) -> bool:
    return await _sought_back(stack, "points", topics.ORDERS_EVENTS) >= before + more


async def _readiness_of(stack, service: str, status: int) -> bool:
    return (await _readiness(stack, service))[0] == status


async def test_readiness_is_false_while_kafka_does_not_answer_and_true_again_once_it_does(stack):
    await eventually(lambda: _all_ready(stack), timeout=120)
    kafka_pid = stack._kafka.pid
    os.kill(kafka_pid, signal.SIGSTOP)  # the broker is frozen: connections stay open, nothing answers
    try:
        async def kafka_down():
            status, body = await _readiness(stack, "shipping")
            return status == 503 and body["checks"]["kafka"] is False and body

        body = await eventually(kafka_down, timeout=90, interval=0.5)
        assert body["checks"]["database"] is True
    finally:
        os.kill(kafka_pid, signal.SIGCONT)
    # Every service ready again before the next test uses the suite.
    await eventually(lambda: _all_ready(stack), timeout=180, interval=0.5)
    status, body = await _readiness(stack, "shipping")
    assert status == 200 and body["checks"]["kafka"] is True
