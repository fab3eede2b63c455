"""The transactional outbox: rows written with the change that caused them, published in order by one relay."""

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ordermesh_contracts import Message

from .database import TRANSIENT_DB_ERRORS, backoff_delays
from .metrics import Metrics

_RELAY_LOCK_KEY = 0x6F6D7279  # one relay per service database publishes at a time


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to publish: topic, key, headers and the encoded value."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    @classmethod
    def of(cls, topic: str, message: Message, key: str | None = None) -> "OutgoingMessage":
        """Encodes a contract message; the key defaults to the message's own (`kafka_key()`)."""
        if key is None and hasattr(message, "kafka_key"):
            key = message.kafka_key()
        headers = [
            ("type", message.type.encode()),
            ("schema_version", str(message.schema_version).encode()),
            ("correlation_id", str(message.correlation_id).encode()),
            ("traceparent", traceparent_for(message).encode()),
        ]
        return cls(topic, key.encode() if key else None, message.model_dump_json().encode(), headers)


def traceparent_for(message: Message) -> str:
    """A W3C traceparent whose trace id is the correlation id and span id comes from the event id."""
    return f"00-{message.correlation_id.hex}-{message.event_id.hex[:16]}-01"


async def write_outbox(conn: asyncpg.Connection, messages: Sequence[OutgoingMessage]) -> None:
    """Inserts messages into the outbox inside the caller's transaction, in the given order."""
    if not messages:
        return
    await conn.executemany(
        "INSERT INTO outbox (topic, key, headers, payload) VALUES ($1, $2, $3::jsonb, $4)",
        [
            (m.topic, m.key, json.dumps([[k, v.decode("latin-1")] for k, v in m.headers]), m.value)
            for m in messages
        ],
    )


class OutboxRelay:
    """Publishes outbox rows to Kafka in id order, then deletes them.

    One relay per database holds an advisory lock and publishes; replicas wait on standby. It wakes
    on NOTIFY from the outbox trigger and also polls, so nothing waits forever. A publish that
    fails leaves its rows in place: they go again (consumers' inboxes absorb the repeat).
    """

    def __init__(
        self,
        *,
        dsn: str,
        producer: AIOKafkaProducer,
        metrics: Metrics,
        batch_size: int,
        poll_seconds: float,
        retry_max_seconds: float,
    ) -> None:
        self._dsn = dsn
        self._producer = producer
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._retry_max_seconds = retry_max_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._log = structlog.get_logger("outbox_relay")
        self.is_leader = False

    def start(self) -> None:
        """Starts the relay loop in the background."""
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stops the loop; unpublished rows stay for the next start."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        delays = backoff_delays(self._retry_max_seconds)
        while True:
            try:
                await self._lead_and_publish()
            except (KafkaError, *TRANSIENT_DB_ERRORS) as error:
                self.is_leader = False
                delay = await anext(delays)
                self._log.warning("outbox relay interrupted, retrying", error=type(error).__name__, retry_in_s=delay)
                await asyncio.sleep(delay)

    async def _lead_and_publish(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self._dsn, timeout=5)
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _RELAY_LOCK_KEY):
                await asyncio.sleep(self._poll_seconds * 4)
            self.is_leader = True
            await conn.add_listener("outbox", self._on_notify)
            while True:
                published = await self._publish_batch(conn)
                if published < self._batch_size:
                    await self._wait_for_work()
        finally:
            self.is_leader = False
            conn.terminate()

    def _on_notify(self, *_args: Any) -> None:
        self._wake.set()

    async def _wait_for_work(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    async def _publish_batch(self, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch(
            "SELECT id, topic, key, headers, payload FROM outbox ORDER BY id LIMIT $1", self._batch_size
        )
        if not rows:
            return 0
        deliveries = []
        for row in rows:
            headers = [(k, v.encode("latin-1")) for k, v in json.loads(row["headers"])]
            deliveries.append(
                await self._producer.send(row["topic"], value=row["payload"], key=row["key"], headers=headers)
            )
        await asyncio.gather(*deliveries)
        await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [row["id"] for row in rows])
        self._metrics.outbox_published.inc(len(rows))
        return len(rows)
