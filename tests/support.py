"""Helpers of the end-to-end tests: record every topic, publish raw messages, wait for outcomes, query databases."""

import asyncio
import base64
import hashlib
import hmac
import importlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from ordermesh_contracts.topics import all_topics_with_dead_letters
from ordermesh_devstack.stack import SERVICES, SHOPIFY_DEMO_DOMAIN


@dataclass
class SeenMessage:
    """One message read back from a topic."""

    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]

    def json(self) -> Any:
        """The value as JSON (raises for a non-JSON dead letter)."""
        return json.loads(self.value)


@dataclass
class TopicRecorder:
    """Reads every ordermesh topic (and dead-letter topic) from the beginning, in the background."""

    bootstrap: str
    messages: list[SeenMessage] = field(default_factory=list)
    test_started_at: int = 0
    """How many messages had been seen when the current test started (set by an autouse fixture)."""
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task | None = None

    async def start(self) -> None:
        """Starts reading."""
        self._consumer = AIOKafkaConsumer(
            *all_topics_with_dead_letters(),
            bootstrap_servers=self.bootstrap,
            group_id=f"test-recorder-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=2000)
            for records in batches.values():
                for record in records:
                    self.messages.append(
                        SeenMessage(record.topic, record.key, record.value, {k: v for k, v in record.headers})
                    )

    def dead_letters_since_test_start(self, service: str) -> list[SeenMessage]:
        """Dead letters written by `service`'s consumers since the current test started (earlier tests poison on purpose)."""
        group = f"ordermesh-{service}".encode()
        return [
            m
            for m in self.messages[self.test_started_at :]
            if m.topic.endswith(".dlq") and m.headers.get("dlq.consumer_group") == group
        ]

    def on(self, topic: str, **match: Any) -> list[SeenMessage]:
        """Messages on `topic` whose JSON has every `match` field equal (dead letters match by header names)."""
        found = []
        for message in self.messages:
            if message.topic != topic:
                continue
            if topic.endswith(".dlq"):
                if all(message.headers.get(k, b"").decode() == str(v) for k, v in match.items()):
                    found.append(message)
                continue
            try:
                body = message.json()
            except (TypeError, ValueError, RecursionError):  # poison (tombstones, deep nesting) from reliability tests
                continue
            if not isinstance(body, dict):
                continue
            if all(str(body.get(k)) == str(v) for k, v in match.items()):
                found.append(message)
        return found

    async def wait_for(self, topic: str, count: int = 1, timeout: float = 60, **match: Any) -> list[SeenMessage]:
        """Waits until at least `count` messages match; fails the test with what was seen otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.on(topic, **match)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"{len(self.on(topic, **match))} of {count} messages on {topic} matching {match}")

    async def stop(self) -> None:
        """Stops reading."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer:
            await self._consumer.stop()


async def publish_raw(bootstrap: str, topic: str, value: bytes, key: bytes | None = None, headers=None) -> None:
    """Publishes bytes as they are, the way a shop (or a broken shop) would."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, headers=headers or [])
    finally:
        await producer.stop()


async def eventually(check: Callable[[], Any], timeout: float = 60, interval: float = 0.2) -> Any:
    """Retries an async or sync check until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last: {last!r})")


async def fetch(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """Runs one query on a service database."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


@asynccontextmanager
async def migrated_pool(dsn: str, service: str, max_size: int = 8) -> AsyncIterator[asyncpg.Pool]:
    """A pool on `dsn` after the service's migrations (and the kit's) ran: a service database for store tests."""
    from ordermesh_servicekit.migrations import migrate_service

    package = importlib.import_module(f"ordermesh_{service}")
    migrations = Path(package.__file__).parent / "migrations"
    async with asyncpg.create_pool(dsn, min_size=1, max_size=max_size) as pool:
        async with pool.acquire() as conn:
            await migrate_service(conn, service, migrations)
        yield pool


GOLDEN = Path(__file__).resolve().parent.parent / "contracts" / "tests" / "golden"


def golden_message(name: str, **changes: Any) -> dict[str, Any]:
    """A golden contract example (contracts/tests/golden) as a fresh message: a new event id, `changes` applied."""
    return {**json.loads((GOLDEN / f"{name}.json").read_text("utf-8")), "event_id": str(uuid.uuid4()), **changes}


class _QuietLog:
    def __getattr__(self, _name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


@asynccontextmanager
async def counted_pool(dsn: str, service: str) -> AsyncIterator[tuple[asyncpg.Pool, "StatementCounter"]]:
    """A pool on the service's migrated database whose every statement is counted; connections are released as the
    services release them (no reset query), so the counts are what a handler costs in production."""
    from doubles import StatementCounter
    from ordermesh_servicekit.database import keep_session, prime_codecs

    counter = StatementCounter()
    async with migrated_pool(dsn, service, max_size=2):
        pass

    async def log_queries(conn: asyncpg.Connection) -> None:
        await prime_codecs(conn)
        conn.add_query_logger(counter)

    async with asyncpg.create_pool(dsn, min_size=1, max_size=4, init=log_queries, reset=keep_session) as pool:
        yield pool, counter


async def statements_of(pool: asyncpg.Pool, counter: "StatementCounter", handler: Callable[..., Any], message: Any, topic: str = "test") -> tuple[int, int]:
    """(statements, transactions) that handling `message` once costs; a duplicate counts what finding it out cost."""
    from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext

    await asyncio.sleep(0)
    counter.reset()
    try:
        await handler(message, MessageContext(pool, message.event_id, topic, log=_QuietLog()))
    except DuplicateMessage:
        pass
    await asyncio.sleep(0)  # query loggers are called soon after each query, not during it
    return len(counter.statements), counter.transactions


SHOPIFY_FIXTURE = Path(__file__).resolve().parent.parent / "services/orders/tests/data/shopify_orders_create.json"


def shopify_order_body(order_id: int) -> bytes:
    """A Shopify orders/create body of the demo shop's stock and a valid Japanese address, with Shopify's id `order_id`."""
    order = json.loads(SHOPIFY_FIXTURE.read_text())
    order["id"] = order_id
    order["shipping_address"]["zip"] = "150-0001"
    for item in order["line_items"]:
        item["sku"] = "SKU-001"
    return json.dumps(order, ensure_ascii=False).encode()


def shopify_headers(secret: str, body: bytes, webhook_id: str) -> dict[str, str]:
    """Shopify's webhook headers for the demo store, signed with `secret`."""
    return {
        "X-Shopify-Shop-Domain": SHOPIFY_DEMO_DOMAIN,
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Hmac-Sha256": base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode(),
        "Content-Type": "application/json",
    }


def evidence_wanted() -> bool:
    """Whether this run keeps evidence for an issue note (`make evidence` sets ORDERMESH_EVIDENCE_DIR)."""
    return bool(os.environ.get("ORDERMESH_EVIDENCE_DIR"))


def keep_evidence(name: str, text: str) -> None:
    """Writes `text` to <ORDERMESH_EVIDENCE_DIR>/<name>.txt when evidence is wanted."""
    if folder := os.environ.get("ORDERMESH_EVIDENCE_DIR"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{name}.txt").write_text(text, encoding="utf-8")


def log_lines_about(stack, order_id) -> dict[str, list[dict]]:
    """Every JSON log line of each of the five services that names the order id (what `grep <order id>` finds)."""
    found: dict[str, list[dict]] = {}
    for service in SERVICES:
        text = stack.processes[service].log_path.read_text(encoding="utf-8", errors="replace")
        found[service] = [json.loads(line) for line in text.splitlines() if str(order_id) in line and line.startswith("{")]
    return found


def log_story(found: dict[str, list[dict]]) -> str:
    """`log_lines_about` as one short line per log line, in time order: time, service, what happened, outcome."""
    rows = []
    for service, entries in found.items():
        for e in entries:
            what = e.get("what") or (e.get("target") if e["event"].startswith("outside call") else e.get("type")) or ""
            detail = " ".join(f"{k}={e[k]}" for k in ("outcome", "operation", "actor", "details") if e.get(k) not in (None, ""))
            rows.append((e.get("timestamp", ""), f"{e.get('timestamp', '')[11:23]} {service:<8} {e['event']}: {what} {detail}".rstrip()))
    return "\n".join(line for _at, line in sorted(rows))
