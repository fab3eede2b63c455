"""`make bench`: the whole suite's end-to-end orders/s, handled messages/s and latency (at saturation, at a steady
50 orders/s, with two replicas of every service), then intake alone, beside a raw pipeline of the same shape (plain
aiokafka + asyncpg, the same durable hop) and raw Kafka/PostgreSQL baselines run in the same sitting."""

import argparse
import asyncio
import logging
import shutil
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from .bench_report import report
from .demo import Watcher, demo_order
from .raw_pipeline import run_pipeline
from .stack import SERVICES, LocalStack, StackConfig


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
    """CPU seconds and peak RSS of each service (summed over its replicas; RSS: the largest replica) over a window."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self._processes = {name: [psutil.Process(pid) for pid in ids] for name, ids in pids.items()}
        self._cpu_start = {name: self._cpu(ps) for name, ps in self._processes.items()}
        self.peak_rss = {name: 0 for name in self._processes}
        self._task = asyncio.create_task(self._sample())

    @staticmethod
    def _cpu(processes: list[psutil.Process]) -> float:
        return cpu_seconds(processes)

    async def _sample(self) -> None:
        while True:
            for name, processes in self._processes.items():
                for process in processes:
                    try:
                        self.peak_rss[name] = max(self.peak_rss[name], process.memory_info().rss)
                    except psutil.NoSuchProcess:
                        pass
            await asyncio.sleep(0.25)

    async def stop(self) -> dict[str, float]:
        """CPU seconds used per service since the sampler started."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return {name: self._cpu(ps) - self._cpu_start[name] for name, ps in self._processes.items()}


SANDBOXES = ("gateway", "warehouse", "smtp")


def infrastructure_pids(stack: LocalStack) -> dict[str, list[int]]:
    """What else the machine runs for the suite in the bench: the broker, the database server (its backends are its
    children) and the sandboxes standing in for the gateway, the warehouse and the mail server."""
    where = stack.describe()
    return {
        "Kafka": [where["kafka_pid"]] if where["kafka_pid"] else [],
        "PostgreSQL": [where["postgres_pid"]] if where["postgres_pid"] else [],
        "sandboxes": [stack.processes[name].process.pid for name in SANDBOXES if name in stack.processes and stack.processes[name].alive],
    }


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """CPU seconds the processes still alive have used so far."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds the processes and all their descendants now alive have used so far."""
    tree: list[psutil.Process] = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            tree += [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    return cpu_seconds(tree)


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


GROUPS = tuple(f"ordermesh-{name}" for name in SERVICES)


async def consumed_messages(bootstrap: str, **security) -> int:
    """Records the five services' consumer groups have committed so far, over every topic they read."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    await admin.start()
    try:
        total = 0
        for group in GROUPS:
            offsets = await admin.list_consumer_group_offsets(group)
            total += sum(meta.offset for meta in offsets.values() if meta.offset > 0)
        return total
    finally:
        await admin.close()


def service_pids(stack: LocalStack) -> dict[str, list[int]]:
    """The process id of every running replica of each service."""
    return {
        name: [stack.processes[n].process.pid for n in stack.replica_names(name) if stack.processes[n].alive]
        for name in SERVICES
    }


async def end_to_end(stack: LocalStack, count: int, rate: float, timeout: float, first_number: int) -> dict:
    """Publishes `count` demo orders at `rate`/s and measures acceptance and completion from the topics."""
    watcher = Watcher(stack.bootstrap, security=stack.kafka_security)
    await watcher.start()
    producer = AIOKafkaProducer(**stack.kafka_options, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    messages_before = await topic_message_count(stack.bootstrap, **stack.kafka_security)
    consumed_before = await consumed_messages(stack.bootstrap, **stack.kafka_security)
    transactions_before = await committed_transactions(stack.admin_dsn)
    sampler = ResourceSampler(service_pids(stack))
    infrastructure = infrastructure_pids(stack)
    infrastructure_start = {name: tree_cpu(pids) for name, pids in infrastructure.items()}
    started = time.monotonic()
    for n in range(count):
        order = demo_order(first_number + n)
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
    infrastructure_cpu = {name: tree_cpu(pids) - infrastructure_start[name] for name, pids in infrastructure.items()}
    # the services' last consumers (notify reading OrderCompleted...) commit shortly after the order completes
    await _until_stable(partial(consumed_messages, stack.bootstrap, **stack.kafka_security), 10)
    consumed = await consumed_messages(stack.bootstrap, **stack.kafka_security) - consumed_before
    messages = await topic_message_count(stack.bootstrap, **stack.kafka_security) - messages_before
    transactions = await committed_transactions(stack.admin_dsn) - transactions_before
    await producer.stop()
    await watcher.stop()
    tracks = list(watcher.tracks.values())
    accepted = [t.accepted_at - t.submitted_at for t in tracks if t.accepted_at]
    completed = [t.completed_at - t.submitted_at for t in tracks if t.completed_at]
    last_accept = max((t.accepted_at for t in tracks if t.accepted_at), default=started)
    last_completion = max((t.completed_at for t in tracks if t.completed_at), default=started)
    window = last_completion - started
    return {
        "offered": count,
        "rate_offered": rate,
        "published_in": published_in,
        "accepted": len(accepted),
        "completed": len(completed),
        "intake_rate": len(accepted) / max(last_accept - started, 1e-9),
        "e2e_rate": len(completed) / max(window, 1e-9),
        "accept_latency": accepted,
        "complete_latency": completed,
        "cpu": cpu,
        "infrastructure_cpu": infrastructure_cpu,
        "peak_rss": sampler.peak_rss,
        "window": window,
        "dead_letters": watcher.dead_letters,
        "messages_per_order": messages / max(count, 1),
        "consumed_per_order": consumed / max(count, 1),
        "handled_rate": consumed / max(window, 1e-9),
        "transactions_per_order": transactions / max(count, 1),
    }


async def _until_stable(read, seconds: float) -> None:
    """Waits (at most `seconds`) until `read()` gives the same value twice 0.5 s apart."""
    deadline = time.monotonic() + seconds
    last = await read()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = await read()
        if now == last:
            return
        last = now


async def until_group_has(bootstrap: str, group: str, members: int, timeout: float, **security) -> None:
    """Waits (at most `timeout`) until the consumer group is stable with `members` members. A stopped replica with a
    static membership stays in its group until its session times out, and its partitions wait until then."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            [response] = await admin.describe_consumer_groups([group])
            [(_error, _group, state, _type, _protocol, found, *_rest)] = response.groups
            if state == "Stable" and len(found) == members:
                return
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def intake_only(stack: LocalStack, count: int, timeout: float) -> dict:
    """Stops every service but orders (its first replica), waits until orders' consumer group holds that replica
    alone, publishes `count` demo orders at once and measures ShopOrderSubmitted → OrderAccepted from the topics: the
    orders service's own intake rate at saturation."""
    for name in stack.service_processes():
        if name != "orders":
            await asyncio.to_thread(stack.processes[name].stop)
    await until_group_has(stack.bootstrap, "ordermesh-orders", 1, timeout, **stack.kafka_security)
    watcher = Watcher(stack.bootstrap, security=stack.kafka_security)
    await watcher.start()
    producer = AIOKafkaProducer(**stack.kafka_options, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    messages_before = await topic_message_count(stack.bootstrap, **stack.kafka_security)
    transactions_before = await committed_transactions(stack.admin_dsn, ("orders",))
    sampler = ResourceSampler({"orders": [stack.processes["orders"].process.pid]})
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


async def raw_database(admin_dsn: str) -> str:
    """A fresh database for the raw pipeline's inbox and outbox tables; its DSN."""
    name = f"bench_raw_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return admin_dsn.rsplit("/", 1)[0] + f"/{name}"


async def with_replicas(stack: LocalStack, replicas: int, timeout: float = 240) -> None:
    """Starts replicas of every service until each has `replicas`, waits until they answer /readyz and until every
    service's consumer group is stable with them all (a replica is ready before its group has rebalanced: a run
    started then measured the rebalances too)."""
    started = [stack.add_replica(name) for name in SERVICES for _ in range(replicas - len(stack.replica_names(name)))]
    await stack.wait_ready(started, timeout=timeout)
    await asyncio.gather(
        *(until_group_has(stack.bootstrap, f"ordermesh-{name}", replicas, timeout, **stack.kafka_security) for name in SERVICES)
    )


def load_average() -> str:
    """The machine's 1/5/15-minute load averages (other work on the machine skews every figure)."""
    return "/".join(f"{value:.1f}" for value in psutil.getloadavg())


async def run(args: argparse.Namespace) -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="ordermesh-bench-"))
    stack = LocalStack(StackConfig(run_dir=run_dir, ship_delay_seconds=0.0, log_level="WARNING"))
    results: dict = {"load_start": load_average(), "args": args}
    try:
        await stack.start()
        results["kafka_rate"] = await kafka_baseline(stack.bootstrap, args.baseline_messages, 1024, **stack.kafka_security)
        results["pg_rate"] = await postgres_baseline(stack.admin_dsn, args.baseline_messages)
        if args.raw_orders and not stack.kafka_security:
            results["raw"] = await run_pipeline(
                stack.bootstrap, await raw_database(stack.admin_dsn), args.raw_orders, stack.config.partitions, args.timeout
            )
        results["load_raw"] = load_average()
        results["throughput"] = await end_to_end(stack, args.orders, args.rate, args.timeout, 5_000_000)
        results["gateway_calls"] = await service_rate(
            stack.admin_dsn, "ordermesh_payments",
            "SELECT count(*) AS n, min(requested_at) AS first, max(completed_at) AS last"
            " FROM gateway_calls WHERE status = 'succeeded'",
        )
        results["mails"] = await service_rate(
            stack.admin_dsn, "ordermesh_notify",
            "SELECT count(*) AS n, min(created_at) AS first, max(sent_at) AS last FROM mail_log WHERE status = 'sent'",
        )
        results["load_throughput"] = load_average()
        if args.steady_orders:
            results["steady"] = await end_to_end(stack, args.steady_orders, args.steady_rate, args.timeout, 6_000_000)
            results["load_steady"] = load_average()
        if args.replicas > 1 and args.replica_orders:
            await with_replicas(stack, args.replicas)
            results["replicas"] = await end_to_end(stack, args.replica_orders, args.rate, args.timeout, 8_000_000)
            results["load_replicas"] = load_average()
        if args.intake_orders:
            results["intake"] = await intake_only(stack, args.intake_orders, args.timeout)
            results["load_intake"] = load_average()
    finally:
        await asyncio.to_thread(stack.stop)
        if not args.keep_run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)  # the broker's and databases' files: ~370 MB a run
    print(report(results))


def main(argv: list[str] | None = None) -> None:
    """Entry point of `make bench`."""
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # a new topic's first sends retry until it has a leader
    parser = argparse.ArgumentParser(prog="ordermesh-bench", description=__doc__)
    parser.add_argument("--orders", type=int, default=400, help="card orders of the throughput run")
    parser.add_argument("--rate", type=float, default=200.0, help="orders offered per second in the throughput runs")
    parser.add_argument("--steady-orders", type=int, default=250, help="orders of the run at --steady-rate (0: skip)")
    parser.add_argument("--steady-rate", type=float, default=50.0, help="orders offered per second in the latency run")
    parser.add_argument("--replicas", type=int, default=2, help="replicas of every service in the replica run")
    parser.add_argument("--replica-orders", type=int, default=400, help="orders of the replica run (0: skip)")
    parser.add_argument("--raw-orders", type=int, default=1000, help="orders through the raw pipeline (0: skip)")
    parser.add_argument("--intake-orders", type=int, default=300, help="orders published at once for the intake-only run (0: skip)")
    parser.add_argument("--baseline-messages", type=int, default=3000, help="messages/transactions of the raw Kafka and PostgreSQL baselines")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--keep-run-dir", action="store_true", help="keep the stack's folder (logs, data) after the run")
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
