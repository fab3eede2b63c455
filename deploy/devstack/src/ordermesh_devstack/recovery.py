"""Measures recovery on the local suite: a killed service's restart, a killed replica's takeover, a replica joining.

`python -m ordermesh_devstack.recovery [--baseline]` starts a suite with two replicas of every service and prints
the figures as JSON; `--baseline` runs it with the consumer timings ordermesh used before (aiokafka's 10 s
session and 3 s heartbeat, dynamic membership) for a before/after comparison. The tests use the same functions.
"""

import argparse
import asyncio
import json
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from ordermesh_contracts import order_id_for, topics

from .demo import demo_order
from .stack import LocalStack, StackConfig

BASELINE_ENV = {
    "ORDERMESH_KAFKA_SESSION_TIMEOUT_MS": "10000",
    "ORDERMESH_KAFKA_HEARTBEAT_INTERVAL_MS": "3000",
    "ORDERMESH_KAFKA_REBALANCE_TIMEOUT_MS": "10000",
}
_REBALANCES = re.compile(r'^ordermesh_consumer_rebalances_total\{topic="([^"]+)"\} (\S+)$', re.M)


@dataclass
class Figures:
    """What one measurement found, in seconds (rebalances as a count)."""

    name: str
    values: dict[str, float]


async def publish_orders(bootstrap: str, numbers: range) -> list[str]:
    """Publishes demo card orders to the intake topic; returns their order ids."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    ids = []
    try:
        for number in numbers:
            order = demo_order(number)
            ids.append(str(order_id_for(order.shop_id, order.channel.value, order.external_order_no)))
            await producer.send_and_wait(topics.SHOP_ORDERS, order.model_dump_json().encode())
    finally:
        await producer.stop()
    return ids


async def _until(check, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(interval)
    raise TimeoutError(f"not within {timeout} s")


async def _ready(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
    except httpx.TransportError:
        return False


async def rebalances(port: int) -> dict[str, float]:
    """Partition assignments a service process's consumers have received so far (one per rebalance), by topic."""
    async with httpx.AsyncClient(timeout=2) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    return {topic: float(value) for topic, value in _REBALANCES.findall(text)}


async def measure_restart(stack: LocalStack, service: str, *, first_number: int, backlog: int = 6) -> Figures:
    """SIGKILLs every replica of `service`, lets work for it queue up, restarts the first replica: seconds to /readyz
    and to its first processed message (the first inbox row written after the restart)."""
    dsn = stack.service_dsns[service]
    for name in stack.replica_names(service):
        stack.kill_service(name)
    ids = await publish_orders(stack.bootstrap, range(first_number, first_number + backlog))
    if service != "orders":
        await _until(lambda: _count(stack.service_dsns["orders"], "SELECT count(*) FROM orders WHERE order_id = ANY($1::uuid[])", ids, backlog), 60)
    since = await _scalar(dsn, "SELECT now()")
    started = time.monotonic()
    stack.processes[service].start()
    await _until(lambda: _ready(stack.processes[service].http_port), 90)
    ready = time.monotonic() - started
    await _until(lambda: _scalar(dsn, "SELECT true FROM inbox WHERE received_at > $1 LIMIT 1", since), 90)
    first = time.monotonic() - started
    return Figures(f"restart of {service}", {"to_ready_s": round(ready, 2), "to_first_processed_s": round(first, 2)})


async def measure_takeover(stack: LocalStack, victim: str, *, first_number: int, orders: int = 12) -> Figures:
    """SIGKILLs one replica of payments-like `victim` (a process name) and publishes orders at once: the longest
    wait until the service recorded them, against the same with nobody killed. The difference is how long the dead
    replica's partitions sat idle."""
    service = victim.split("-")[0]
    dsn = stack.service_dsns[service]
    query = "SELECT count(*) FROM inbox WHERE topic = $2 AND received_at > $1"

    async def longest_wait(numbers: range) -> float:
        since = await _scalar(dsn, "SELECT now()")
        started = time.monotonic()
        await publish_orders(stack.bootstrap, numbers)
        await _until(lambda: _count(dsn, query, since, topics.ORDERS_EVENTS, len(numbers)), 120)
        return time.monotonic() - started

    calm = await longest_wait(range(first_number, first_number + orders))
    stack.kill_service(victim)
    killed = await longest_wait(range(first_number + orders, first_number + 2 * orders))
    return Figures(
        f"takeover after SIGKILL of {victim}",
        {"all_handled_calm_s": round(calm, 2), "all_handled_after_kill_s": round(killed, 2), "idle_s": round(killed - calm, 2)},
    )


async def measure_join(stack: LocalStack, service: str) -> Figures:
    """Adds a replica of `service`: seconds to /readyz, seconds until the group settled (no new assignment for 5 s),
    and how many rebalances the join set off at a replica already running."""
    running = [stack.processes[n] for n in stack.replica_names(service) if stack.processes[n].alive]
    before = [await rebalances(p.http_port) for p in running]
    started = time.monotonic()
    name = stack.add_replica(service)
    port = stack.processes[name].http_port
    await _until(lambda: _ready(port), 90)
    ready = time.monotonic() - started
    last_change, seen = time.monotonic(), None
    while time.monotonic() - last_change < 5:
        now = [await rebalances(p.http_port) for p in running]
        if now != seen:
            seen, last_change = now, time.monotonic()
        await asyncio.sleep(0.1)
    settled = last_change - started
    # A rebalance gives each consumer of the group one assignment: the most any one consumer got is the count.
    per_consumer = [after[topic] - b.get(topic, 0) for after, b in zip(seen, before) for topic in after]
    return Figures(
        f"join of {name}",
        {"to_ready_s": round(ready, 2), "to_settled_s": round(settled, 2), "rebalances_at_a_running_replica": max(per_consumer)},
    )


async def _scalar(dsn: str, query: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def _count(dsn: str, query: str, *args) -> bool:
    """Whether `query` (a count, its expected value last in args) reaches the expected value."""
    *params, expected = args
    return (await _scalar(dsn, query, *params)) >= expected


async def main(baseline: bool) -> None:
    """Starts a two-replica suite, measures, prints JSON, stops."""
    with tempfile.TemporaryDirectory(prefix="ordermesh-recovery-") as run_dir:
        config = StackConfig(
            run_dir=Path(run_dir), replicas=2, static_membership=not baseline,
            service_env=BASELINE_ENV if baseline else {}, ship_delay_seconds=0.2,
        )
        stack = LocalStack(config)
        try:
            await stack.start()
            results = [
                await measure_takeover(stack, "payments-2", first_number=990_000),
                await measure_join(stack, "payments"),
                await measure_restart(stack, "payments", first_number=990_100),
            ]
            print(json.dumps({"baseline": baseline, **{f.name: f.values for f in results}}, indent=2))
        finally:
            await asyncio.to_thread(stack.stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", action="store_true", help="aiokafka's default timings, dynamic membership")
    asyncio.run(main(parser.parse_args().baseline))
