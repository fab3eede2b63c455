"""The raw pipeline `make bench` compares the suite with: plain aiokafka + asyncpg, one process per service.

Each process does the suite's durable hop and nothing else: take a batch from Kafka, one transaction inserting an
inbox row per message (one statement) and an outbox row per output (one statement), publish the outputs, delete
their outbox rows, commit the offsets. The topology is the suite's: each service reads the topics it reads in the
suite, and one order causes the messages a card order causes there (`CARD_ORDER`), each published by the service
that publishes it in the suite after it consumed the message that causes it.
"""

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ordermesh_contracts import topics

from .processes import stop_process_group

READS: dict[str, tuple[str, ...]] = {
    "orders": (topics.SHOP_ORDERS, topics.ORDERS_COMMANDS, topics.PAYMENTS_EVENTS, topics.SHIPPING_EVENTS,
               topics.POINTS_EVENTS, topics.NOTIFY_EVENTS),
    "payments": (topics.ORDERS_EVENTS, topics.SHIPPING_EVENTS, topics.PAYMENTS_CALLBACKS, topics.PAYMENTS_COMMANDS),
    "shipping": (topics.ORDERS_EVENTS, topics.SHIPPING_CALLBACKS, topics.SHIPPING_COMMANDS),
    "points": (topics.ORDERS_EVENTS, topics.PAYMENTS_EVENTS, topics.POINTS_COMMANDS),
    "notify": (topics.ORDERS_EVENTS, topics.PAYMENTS_EVENTS, topics.SHIPPING_EVENTS, topics.POINTS_EVENTS,
               topics.NOTIFY_COMMANDS),
}
"""The topics each service of the suite reads (its subscriptions)."""


@dataclass(frozen=True)
class Step:
    """One message of an order: its topic, who publishes it, and which earlier step (by index) causes it."""

    topic: str
    publisher: str
    cause: int | None


def _card_order() -> tuple[Step, ...]:
    o, p, s, pt, n = "orders", "payments", "shipping", "points", "notify"
    steps: list[Step] = []

    def add(topic: str, publisher: str, cause: int | None) -> int:
        steps.append(Step(topic, publisher, cause))
        return len(steps) - 1

    submitted = add(topics.SHOP_ORDERS, "shop", None)
    accepted = add(topics.ORDERS_EVENTS, o, submitted)                  # OrderAccepted
    add(topics.ORDERS_EVENTS, o, submitted)                             # OrderProgressed (review passed)
    add(topics.SHOP_UPDATES, o, submitted)                              # ShopOrderAccepted
    add(topics.POINTS_EVENTS, pt, accepted)                             # PointsAccrued
    authorized = add(topics.PAYMENTS_EVENTS, p, accepted)               # PaymentAuthorized
    add(topics.NOTIFY_EVENTS, n, accepted)                              # MailSent (accepted mail)
    add(topics.SHIPPING_EVENTS, s, accepted)                            # DeliveryDateChecked
    to_allocate = add(topics.ORDERS_EVENTS, o, authorized)              # OrderProgressed (awaiting allocation)
    allocated = add(topics.SHIPPING_EVENTS, s, to_allocate)             # StockAllocated
    ready = add(topics.ORDERS_EVENTS, o, allocated)                     # OrderProgressed (ready to ship)
    requested = add(topics.SHIPPING_EVENTS, s, ready)                   # ShipmentRequested
    add(topics.NOTIFY_EVENTS, n, ready)                                 # MailNotApplicable
    reported = add(topics.SHIPPING_CALLBACKS, s, ready)                 # WarehouseShipmentReported (HTTP ingress)
    delivered = add(topics.SHIPPING_CALLBACKS, s, ready)                # WarehouseDeliveryReported (HTTP ingress)
    shipped = add(topics.SHIPPING_EVENTS, s, reported)                  # ShipmentShipped
    add(topics.SHIPPING_EVENTS, s, delivered)                           # ShipmentDelivered
    add(topics.ORDERS_EVENTS, o, requested)                             # OrderProgressed (shipping)
    add(topics.ORDERS_EVENTS, o, shipped)                               # OrderProgressed (shipped)
    captured = add(topics.PAYMENTS_EVENTS, p, shipped)                  # PaymentCaptured
    add(topics.NOTIFY_EVENTS, n, shipped)                               # MailSent (shipped mail)
    confirmed = add(topics.POINTS_EVENTS, pt, captured)                 # PointsConfirmed
    add(topics.NOTIFY_EVENTS, n, confirmed)                             # MailNotApplicable
    add(topics.ORDERS_EVENTS, o, shipped)                               # OrderProgressed (flags)
    add(topics.ORDERS_EVENTS, o, confirmed)                             # OrderCompleted
    add(topics.SHOP_UPDATES, o, shipped)                                # ShopOrderShipped
    return tuple(steps)


CARD_ORDER: tuple[Step, ...] = _card_order()
"""The 26 messages one card order causes in the suite (traced from a bench run), with their topics, publishers and
causes; the warehouse's HTTP callbacks are published by shipping when it consumes what makes it request the shipment."""


def consumed_per_order(steps: tuple[Step, ...] = CARD_ORDER) -> int:
    """Messages the five services consume for one order: each step once per service reading its topic."""
    return sum(1 for step in steps for reads in READS.values() if step.topic in reads)


def _check(steps: tuple[Step, ...]) -> None:
    for index, step in enumerate(steps):
        if step.cause is not None and steps[step.cause].topic not in READS[step.publisher]:
            raise ValueError(f"step {index}: {step.publisher} does not read {steps[step.cause].topic}")


_check(CARD_ORDER)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox_{s} (message_id uuid PRIMARY KEY, topic text NOT NULL,
                                      received_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS outbox_{s} (id bigserial PRIMARY KEY, topic text NOT NULL, key bytea,
                                       headers jsonb NOT NULL DEFAULT '[]'::jsonb, payload bytea NOT NULL,
                                       created_at timestamptz NOT NULL DEFAULT now());
"""


async def serve(service: str, bootstrap: str, dsn: str, prefix: str, batch: int) -> None:
    """One raw service: the durable hop over its topics until SIGTERM."""
    outputs: dict[int, list[int]] = {}
    for index, step in enumerate(CARD_ORDER):
        if step.publisher == service and step.cause is not None:
            outputs.setdefault(step.cause, []).append(index)
    conn = await asyncpg.connect(dsn)
    consumer = AIOKafkaConsumer(
        *[prefix + topic for topic in READS[service]], bootstrap_servers=bootstrap, group_id=f"{prefix}{service}",
        enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=batch,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    headers = json.dumps([["type", "Raw"], ["schema_version", "1"]])
    try:
        while not stop.is_set():
            records = [r for rs in (await consumer.getmany(timeout_ms=100, max_records=batch)).values() for r in rs]
            if not records:
                continue
            ids, record_topics, out_topics, out_keys, out_payloads = [], [], [], [], []
            for record in records:
                message = json.loads(record.value)
                ids.append(uuid.UUID(message["id"]))
                record_topics.append(record.topic)
                for index in outputs.get(message["step"], ()):
                    out_topics.append(prefix + CARD_ORDER[index].topic)
                    out_keys.append(record.key)
                    out_payloads.append(json.dumps({"id": str(uuid.uuid4()), "order": message["order"], "step": index,
                                                    "padding": message["padding"]}).encode())
            async with conn.transaction():
                await conn.execute(
                    f"INSERT INTO inbox_{service} (message_id, topic) SELECT * FROM unnest($1::uuid[], $2::text[])"
                    " ON CONFLICT DO NOTHING", ids, record_topics,
                )
                rows = await conn.fetch(
                    f"INSERT INTO outbox_{service} (topic, key, headers, payload)"
                    " SELECT t, k, $4::jsonb, p FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS u(t, k, p) RETURNING id",
                    out_topics, out_keys, out_payloads, headers,
                )
            sends = [await producer.send(t, p, key=k) for t, k, p in zip(out_topics, out_keys, out_payloads)]
            await asyncio.gather(*sends)
            await conn.execute(f"DELETE FROM outbox_{service} WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()
        await conn.close()


async def run_pipeline(bootstrap: str, dsn: str, orders: int, partitions: int, timeout: float, batch: int = 500,
                       security: dict | None = None, padding: int = 800) -> dict:
    """Starts the five raw services, publishes `orders` orders at once and waits until every message is consumed.

    Returns handled messages per second, the window and the orders that made it. Kafka security (TLS, SASL) is not
    supported here: the raw services connect in plain text (`security` must be empty).
    """
    if security:
        raise ValueError("the raw pipeline runs against a plain-text broker only")
    prefix = f"raw{uuid.uuid4().hex[:6]}."
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics(
        [
            NewTopic(prefix + topic, num_partitions=partitions, replication_factor=1)
            for topic in sorted({step.topic for step in CARD_ORDER} | {t for reads in READS.values() for t in reads})
        ]
    )
    await admin.close()
    conn = await asyncpg.connect(dsn)
    for service in READS:
        await conn.execute(_SCHEMA.format(s=service))
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "ordermesh_devstack.raw_pipeline", "--service", service, "--bootstrap", bootstrap,
             "--dsn", dsn, "--prefix", prefix, "--batch", str(batch)],
            start_new_session=True,
        )
        for service in READS
    ]
    expected = orders * consumed_per_order()
    try:
        await _until_groups_joined(conn, bootstrap, prefix)
        before = await _inbox_rows(conn)
        cpu_before = _cpu_seconds(processes)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
        await producer.start()
        started = time.monotonic()
        pad = "x" * padding
        sends = [
            await producer.send(prefix + CARD_ORDER[0].topic, json.dumps(
                {"id": str(uuid.uuid4()), "order": n, "step": 0, "padding": pad}).encode(), key=f"order-{n}".encode())
            for n in range(orders)
        ]
        await asyncio.gather(*sends)
        await producer.stop()
        deadline = started + timeout
        handled = 0
        while time.monotonic() < deadline:
            handled = await _inbox_rows(conn) - before
            if handled >= expected:
                break
            await asyncio.sleep(0.1)
        window = time.monotonic() - started
        cpu = _cpu_seconds(processes) - cpu_before
    finally:
        for process in processes:
            stop_process_group(process, first_signal=signal.SIGTERM, timeout=10, what="raw pipeline service")
        await conn.close()
    return {"handled": handled, "expected": expected, "window": window, "rate": handled / max(window, 1e-9),
            "orders": orders, "consumed_per_order": consumed_per_order(), "cpu_ms_per_order": cpu * 1000 / max(orders, 1)}


def _cpu_seconds(processes: list[subprocess.Popen]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = psutil.Process(process.pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def _inbox_rows(conn: asyncpg.Connection) -> int:
    return await conn.fetchval(" + ".join(f"(SELECT count(*) FROM inbox_{s})" for s in READS).join(("SELECT ", "")))


async def _until_groups_joined(conn: asyncpg.Connection, bootstrap: str, prefix: str) -> None:
    """Sends a warm-up message to each topic and waits until every reader has it in its inbox (every group joined)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        read = {topic for reads in READS.values() for topic in reads}
        for topic in read:
            await producer.send_and_wait(prefix + topic, json.dumps(
                {"id": str(uuid.uuid4()), "order": -1, "step": -1, "padding": ""}).encode(), key=b"warm-up")
        expected = sum(len(reads) for reads in READS.values())
        deadline = time.monotonic() + 120
        while await _inbox_rows(conn) < expected:
            if time.monotonic() > deadline:
                raise TimeoutError("the raw services did not start consuming within 120 s")
            await asyncio.sleep(0.1)
    finally:
        await producer.stop()


def main(argv: list[str] | None = None) -> None:
    """One raw service process (started by `run_pipeline`)."""
    parser = argparse.ArgumentParser(prog="ordermesh-raw-pipeline")
    parser.add_argument("--service", choices=sorted(READS), required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.service, args.bootstrap, args.dsn, args.prefix, args.batch))


if __name__ == "__main__":
    main()
