"""`make bench`: end-to-end orders/s and latency through the whole suite, then intake alone (the orders service taking
shop orders with the rest of the suite stopped), each beside raw aiokafka and asyncpg baselines."""

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from .demo import Watcher, demo_order
from .stack import SERVICES, LocalStack, StackConfig


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of values, in the same unit."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


async def kafka_baseline(bootstrap: str, count: int, size: int, **security) -> float:
    """Plain aiokafka: produce `count` messages (acks=all, idempotent) and consume them back; messages/s."""
    topic = f"bench.baseline.{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])
    await admin.close()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=topic, auto_offset_reset="earliest", **security)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5, **security)
    await consumer.start()
    await producer.start()
    payload = b"x" * size
    started = time.perf_counter()
    sends = [await producer.send(topic, payload, key=str(n).encode()) for n in range(count)]
    await asyncio.gather(*sends)
    received = 0
    while received < count:
        batches = await consumer.getmany(timeout_ms=1000)
        received += sum(len(records) for records in batches.values())
    elapsed = time.perf_counter() - started
    await producer.stop()
    await consumer.stop()
    return count / elapsed


async def postgres_baseline(dsn: str, count: int) -> float:
    """Plain asyncpg: `count` single-row INSERT transactions on one connection; transactions/s."""
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TEMP TABLE bench_rows (id bigint PRIMARY KEY, payload text)")
    started = time.perf_counter()
    for n in range(count):
        async with conn.transaction():
            await conn.execute("INSERT INTO bench_rows VALUES ($1, $2)", n, "x" * 200)
    elapsed = time.perf_counter() - started
    await conn.close()
    return count / elapsed


class ResourceSampler:
    """CPU seconds and peak RSS of each service process over the measured window."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._cpu_start = {name: self._cpu(p) for name, p in self._processes.items()}
        self.peak_rss = {name: 0 for name in self._processes}
        self._task = asyncio.create_task(self._sample())

    @staticmethod
    def _cpu(process: psutil.Process) -> float:
        times = process.cpu_times()
        return times.user + times.system

    async def _sample(self) -> None:
        while True:
            for name, process in self._processes.items():
                self.peak_rss[name] = max(self.peak_rss[name], process.memory_info().rss)
            await asyncio.sleep(0.25)

    async def stop(self) -> dict[str, float]:
        """CPU seconds used per process since the sampler started."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return {name: self._cpu(p) - self._cpu_start[name] for name, p in self._processes.items()}


async def topic_message_count(bootstrap: str, **security) -> int:
    """Messages on every ordermesh topic so far (sum of end offsets)."""
    from ordermesh_contracts.topics import all_topics_with_dead_letters

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **security)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in all_topics_with_dead_letters()
            for p in (consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))
        ]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public metadata refresh
    return consumer.partitions_for_topic(topic) or set()


async def committed_transactions(admin_dsn: str, services: tuple[str, ...] = SERVICES) -> int:
    """Transactions committed in the services' databases so far (pg_stat_database)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        return await conn.fetchval(
            "SELECT sum(xact_commit)::bigint FROM pg_stat_database WHERE datname = ANY($1::text[])",
            [f"ordermesh_{name}" for name in services],
        )
    finally:
        await conn.close()


async def service_rate(admin_dsn: str, database: str, query: str) -> tuple[int, float]:
    """(count, per second) of a service's own records, from one query returning n, first and last timestamps."""
    conn = await asyncpg.connect(admin_dsn.rsplit("/", 1)[0] + f"/{database}")
    try:
        row = await conn.fetchrow(query)
    finally:
        await conn.close()
    if not row["n"] or row["first"] is None or row["last"] is None:
        return 0, 0.0
    return row["n"], row["n"] / max((row["last"] - row["first"]).total_seconds(), 1e-3)


async def end_to_end(stack: LocalStack, count: int, rate: float, timeout: float) -> dict:
    """Publishes `count` demo orders at `rate`/s and measures acceptance and completion from the topics."""
    watcher = Watcher(stack.bootstrap, security=stack.kafka_security)
    await watcher.start()
    producer = AIOKafkaProducer(**stack.kafka_options, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    messages_before = await topic_message_count(stack.bootstrap, **stack.kafka_security)
    transactions_before = await committed_transactions(stack.admin_dsn)
    sampler = ResourceSampler({name: stack.processes[name].process.pid for name in SERVICES})
    started = time.monotonic()
    for n in range(count):
        order = demo_order(5_000_000 + n)
        watcher.expect(order)
        await producer.send(
            "shop.orders.v1", order.model_dump_json().encode(), key=order.external_order_no.encode(),
            headers=[("type", b"ShopOrderSubmitted")],
        )
        delay = started + (n + 1) / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    await producer.flush()
    published_in = time.monotonic() - started
    deadline = time.monotonic() + timeout
    while watcher.completed() < count and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    cpu = await sampler.stop()
    messages = await topic_message_count(stack.bootstrap, **stack.kafka_security) - messages_before
    transactions = await committed_transactions(stack.admin_dsn) - transactions_before
    await producer.stop()
    await watcher.stop()
    tracks = list(watcher.tracks.values())
    accepted = [t.accepted_at - t.submitted_at for t in tracks if t.accepted_at]
    completed = [t.completed_at - t.submitted_at for t in tracks if t.completed_at]
    last_accept = max((t.accepted_at for t in tracks if t.accepted_at), default=started)
    last_completion = max((t.completed_at for t in tracks if t.completed_at), default=started)
    return {
        "published_in": published_in,
        "accepted": len(accepted),
        "completed": len(completed),
        "intake_rate": len(accepted) / max(last_accept - started, 1e-9),
        "e2e_rate": len(completed) / max(last_completion - started, 1e-9),
        "accept_latency": accepted,
        "complete_latency": completed,
        "cpu": cpu,
        "peak_rss": sampler.peak_rss,
        "window": last_completion - started,
        "dead_letters": watcher.dead_letters,
        "messages_per_order": messages / max(count, 1),
        "transactions_per_order": transactions / max(count, 1),
    }


async def intake_only(stack: LocalStack, count: int, timeout: float) -> dict:
    """Stops every service but orders, publishes `count` demo orders at once and measures ShopOrderSubmitted →
    OrderAccepted from the topics: the orders service's own intake rate at saturation."""
    for name in SERVICES:
        if name != "orders":
            await asyncio.to_thread(stack.processes[name].stop)
    watcher = Watcher(stack.bootstrap, security=stack.kafka_security)
    await watcher.start()
    producer = AIOKafkaProducer(**stack.kafka_options, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    messages_before = await topic_message_count(stack.bootstrap, **stack.kafka_security)
    transactions_before = await committed_transactions(stack.admin_dsn, ("orders",))
    sampler = ResourceSampler({"orders": stack.processes["orders"].process.pid})
    orders = [demo_order(7_000_000 + n) for n in range(count)]
    started = time.monotonic()
    sends = []
    for order in orders:
        watcher.expect(order)
        sends.append(await producer.send(
            "shop.orders.v1", order.model_dump_json().encode(), key=order.external_order_no.encode(),
            headers=[("type", b"ShopOrderSubmitted")],
        ))
    await asyncio.gather(*sends)
    published_in = time.monotonic() - started
    deadline = time.monotonic() + timeout
    while sum(1 for t in watcher.tracks.values() if t.accepted_at) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    cpu = await sampler.stop()
    # let the relay's last rounds land before counting what one order cost
    await asyncio.sleep(1)
    messages = await topic_message_count(stack.bootstrap, **stack.kafka_security) - messages_before
    transactions = await committed_transactions(stack.admin_dsn, ("orders",)) - transactions_before
    await producer.stop()
    await watcher.stop()
    accepted = [t.accepted_at for t in watcher.tracks.values() if t.accepted_at]
    window = max(accepted, default=started) - started
    return {
        "published_in": published_in,
        "accepted": len(accepted),
        "rate": len(accepted) / max(window, 1e-9),
        "latency": [t.accepted_at - t.submitted_at for t in watcher.tracks.values() if t.accepted_at],
        "cpu": cpu["orders"],
        "peak_rss": sampler.peak_rss["orders"],
        "window": window,
        "dead_letters": watcher.dead_letters,
        "messages_per_order": messages / max(count, 1),
        "transactions_per_order": transactions / max(count, 1),
    }


def _ms(values: list[float], pct: float) -> str:
    return f"{percentile(values, pct) * 1000:8.0f}"


async def run(args: argparse.Namespace) -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="ordermesh-bench-"))
    stack = LocalStack(StackConfig(run_dir=run_dir, ship_delay_seconds=0.0, log_level="WARNING"))
    try:
        await stack.start()
        kafka_rate = await kafka_baseline(stack.bootstrap, args.orders * 10, 1024, **stack.kafka_security)
        pg_rate = await postgres_baseline(stack.admin_dsn, args.orders * 10)
        result = await end_to_end(stack, args.orders, args.rate, args.timeout)
        result["gateway_calls"] = await service_rate(
            stack.admin_dsn, "ordermesh_payments",
            "SELECT count(*) AS n, min(requested_at) AS first, max(completed_at) AS last"
            " FROM gateway_calls WHERE status = 'succeeded'",
        )
        result["mails"] = await service_rate(
            stack.admin_dsn, "ordermesh_notify",
            "SELECT count(*) AS n, min(created_at) AS first, max(sent_at) AS last FROM mail_log WHERE status = 'sent'",
        )
        intake = await intake_only(stack, args.intake_orders, args.timeout)
    finally:
        await asyncio.to_thread(stack.stop)
    limit = raw_limit(kafka_rate, pg_rate, result["messages_per_order"], result["transactions_per_order"])
    intake_limit = raw_limit(kafka_rate, pg_rate, intake["messages_per_order"], intake["transactions_per_order"])
    lines = [
        f"ordermesh bench — {args.orders} card orders offered at {args.rate:.0f}/s, {psutil.cpu_count()} cores",
        "",
        f"{'end-to-end (intake → completed)':<40}{result['e2e_rate']:10.1f} orders/s   ({result['completed']}/{args.orders} completed, {result['dead_letters']} dead letters)",
        f"{'intake (orders accepted)':<40}{result['intake_rate']:10.1f} orders/s   ({result['accepted']}/{args.orders} accepted)",
        f"{'payments: gateway calls':<40}{result['gateway_calls'][1]:10.1f} calls/s    "
        f"({result['gateway_calls'][0]} authorizations and captures)",
        f"{'notify: mails sent':<40}{result['mails'][1]:10.1f} mails/s    ({result['mails'][0]} mails over real SMTP)",
        f"{'latency to acceptance p50/p95/p99 ms':<40}{_ms(result['accept_latency'], 50)}{_ms(result['accept_latency'], 95)}{_ms(result['accept_latency'], 99)}",
        f"{'latency to completion p50/p95/p99 ms':<40}{_ms(result['complete_latency'], 50)}{_ms(result['complete_latency'], 95)}{_ms(result['complete_latency'], 99)}",
        "",
        f"{'service':<12}{'CPU s':>8}{'CPU %':>8}{'peak RSS MiB':>14}",
    ]
    for name in SERVICES:
        cpu = result["cpu"][name]
        lines.append(f"{name:<12}{cpu:8.1f}{cpu / max(result['window'], 1e-9) * 100:8.0f}{result['peak_rss'][name] / 2**20:14.0f}")
    lines += [
        "",
        "raw baselines on this machine, same run:",
        f"{'  aiokafka produce→consume (1 KiB, acks=all)':<48}{kafka_rate:10.0f} messages/s",
        f"{'  asyncpg single-row transactions':<48}{pg_rate:10.0f} transactions/s",
        f"  measured per order: {result['messages_per_order']:.1f} Kafka messages and {result['transactions_per_order']:.1f} committed"
        " transactions across the suite,",
        f"  so the raw limit is ~{limit:.0f} orders/s; the suite reaches {result['e2e_rate'] / max(limit, 1e-9):.1%} of it",
        "",
        f"intake alone — {args.intake_orders} orders published at once, only the orders service running",
        "",
        f"{'intake (ShopOrderSubmitted → OrderAccepted)':<48}{intake['rate']:10.1f} orders/s   "
        f"({intake['accepted']}/{args.intake_orders} accepted in {intake['window']:.1f} s, {intake['dead_letters']} dead letters)",
        f"{'latency to acceptance p50/p95/p99 ms':<48}{_ms(intake['latency'], 50)}{_ms(intake['latency'], 95)}{_ms(intake['latency'], 99)}",
        f"{'orders service CPU s / CPU % / peak RSS MiB':<48}{intake['cpu']:8.1f}{intake['cpu'] / max(intake['window'], 1e-9) * 100:8.0f}"
        f"{intake['peak_rss'] / 2**20:8.0f}",
        f"  raw baselines as above; measured per order: {intake['messages_per_order']:.1f} Kafka messages and"
        f" {intake['transactions_per_order']:.1f} committed transactions in the orders database,",
        f"  so the raw limit is ~{intake_limit:.0f} orders/s; intake reaches {intake['rate'] / max(intake_limit, 1e-9):.1%} of it",
    ]
    print("\n".join(lines))


def raw_limit(kafka_rate: float, pg_rate: float, messages_per_order: float, transactions_per_order: float) -> float:
    """Orders/s the raw baselines allow for what one order costs in Kafka messages and committed transactions."""
    return min(kafka_rate / max(messages_per_order, 1e-9), pg_rate / max(transactions_per_order, 1e-9))


def main(argv: list[str] | None = None) -> None:
    """Entry point of `make bench`."""
    parser = argparse.ArgumentParser(prog="ordermesh-bench", description=__doc__)
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0, help="orders offered per second")
    parser.add_argument("--intake-orders", type=int, default=1000, help="orders published at once for the intake-only run")
    parser.add_argument("--timeout", type=float, default=300.0)
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
