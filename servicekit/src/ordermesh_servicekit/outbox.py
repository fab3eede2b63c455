"""The transactional outbox: rows written with the change that caused them, published in order by one relay."""

import asyncio
import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    BrokerResponseError,
    ClusterAuthorizationFailedError,
    DuplicateSequenceNumber,
    InvalidProducerEpoch,
    InvalidTopicError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)

from ordermesh_contracts import Message

from .tracing import current_traceparent, producer_span
from .database import backoff_delays
from .metrics import Metrics

_RELAY_LOCK_KEY = 0x6F6D7279  # one relay per service database publishes at a time


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to publish: topic, key, headers and the encoded value."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)

    @classmethod
    def of(cls, topic: str, message: Message, key: str | None = None) -> "OutgoingMessage":
        """Encodes a contract message; the key defaults to the message's own (`kafka_key()`)."""
        if key is None and hasattr(message, "kafka_key"):
            key = message.kafka_key()
        headers = [
            ("type", message.type.encode()),
            ("schema_version", str(message.schema_version).encode()),
            ("correlation_id", str(message.correlation_id).encode()),
            ("traceparent", (current_traceparent() or traceparent_for(message)).encode()),
        ]
        header_field = message.header_field_text()
        if header_field is not None:
            headers.append((message.HEADER_FIELD, header_field.encode()))
        return cls(topic, key.encode() if key else None, message.model_dump_json().encode(), headers)


def traceparent_for(message: Message) -> str:
    """A W3C traceparent whose trace id is the correlation id and span id comes from the event id (used while tracing
    is off; with tracing on, messages carry the span that published them)."""
    return f"00-{message.correlation_id.hex}-{message.event_id.hex[:16]}-01"


def encode_headers(headers: Sequence[tuple[str, bytes | None]]) -> str:
    """Headers as the outbox's JSON: text as latin-1, a value with a NUL byte as base64, a null value as null.

    (PostgreSQL's jsonb holds no NUL character; latin-1 maps every other byte to one character.)
    """
    return json.dumps([[k, _encode_header_value(v)] for k, v in headers])


def _encode_header_value(value: bytes | None) -> str | dict[str, str] | None:
    if value is None:
        return None
    if b"\x00" in value:
        return {"base64": base64.b64encode(value).decode()}
    return value.decode("latin-1")


def decode_headers(stored: str) -> list[tuple[str, bytes | None]]:
    """The headers `encode_headers` stored, as Kafka takes them."""
    return [(k, _decode_header_value(v)) for k, v in json.loads(stored)]


def _decode_header_value(value: str | dict[str, str] | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return base64.b64decode(value["base64"])
    return value.encode("latin-1")


async def write_outbox(conn: asyncpg.Connection, messages: Sequence[OutgoingMessage]) -> None:
    """Inserts messages into the outbox inside the caller's transaction, in the given order, in one statement (one
    round trip and one NOTIFY however many there are; `executemany` executed, and fired the trigger, once a row)."""
    if not messages:
        return
    await conn.execute(_insert_outbox(1, "true"), *_outbox_columns(messages))


def _insert_outbox(first: int, when: str) -> str:
    # headers as text[]: a jsonb[] parameter costs a type lookup
    return (
        "INSERT INTO outbox (topic, key, headers, payload)"
        " SELECT topic, key, headers::jsonb, payload"
        f" FROM unnest(${first}::text[], ${first + 1}::bytea[], ${first + 2}::text[], ${first + 3}::bytea[])"
        " WITH ORDINALITY AS m(topic, key, headers, payload, n)"
        f" WHERE {when} ORDER BY n"
    )


def _outbox_columns(messages: Sequence[OutgoingMessage]) -> tuple[list[str], list[bytes | None], list[str], list[bytes]]:
    return (
        [m.topic for m in messages],
        [m.key for m in messages],
        [encode_headers(m.headers) for m in messages],
        [m.value for m in messages],
    )


Effect = tuple[str, Sequence[Any]]
"""Data-modifying CTEs of a message's unit of work (``"name AS (UPDATE ... AND EXISTS (SELECT FROM seen))"``,
comma-separated, parameters numbered from ``$1``) and their arguments, written in the statement of the message's inbox
row (`record_handled`, `MessageContext.handled_in_one_statement`): each reads ``seen`` (the new inbox row), so that it
changes nothing for a message handled before."""


async def record_handled(
    conn: asyncpg.Connection,
    message_id: UUID,
    topic: str,
    messages: Sequence[OutgoingMessage],
    effects: str = "",
    effect_args: Sequence[Any] = (),
) -> bool:
    """Writes the inbox row of a handled message and its outbox rows (in order) in one statement; False, and no outbox
    row, if the inbox holds the message already.

    `effects` are data-modifying CTEs written in the same statement (``"paid AS (UPDATE payments SET ... WHERE
    order_id = $1 AND EXISTS (SELECT FROM seen))"``, comma-separated, parameters numbered from ``$1`` within
    `effect_args`); each must read ``seen`` (the new inbox row, empty for a message seen before) so that it changes
    nothing for a duplicate. Inside the caller's transaction this is its last statement; outside any transaction it
    is a whole unit of work in one round trip (one statement is atomic on its own)."""
    if not messages and not effects:  # no INSERT INTO outbox: its trigger wakes the relay once a statement, even for no rows
        return bool(await conn.fetchval(
            "INSERT INTO inbox (message_id, topic) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true", message_id, topic
        ))
    rows, row_args = handled_rows(len(effect_args) + 1, message_id, topic, messages)
    parts = [rows, effects] if effects else [rows]
    return await conn.fetchval(f"WITH {', '.join(parts)} SELECT EXISTS (SELECT FROM seen)", *effect_args, *row_args)


def handled_rows(
    first: int, message_id: UUID, topic: str, messages: Sequence[OutgoingMessage], when: str = ""
) -> tuple[str, list[Any]]:
    """The inbox row of a handled message and its outbox rows (in order) as CTEs for a statement of the caller's own,
    with their arguments (parameters numbered from `first`): ``seen``, the new inbox row (empty for a message seen
    before), and the outbox rows, written only with it. With `when`, an SQL condition that may read the statement's
    earlier CTEs, the inbox row (and so every row) is written only if it holds."""
    if when:
        inbox = f"INSERT INTO inbox (message_id, topic) SELECT ${first}::uuid, ${first + 1}::text WHERE {when}"
    else:
        inbox = f"INSERT INTO inbox (message_id, topic) VALUES (${first}, ${first + 1})"
    parts = [f"seen AS ({inbox} ON CONFLICT DO NOTHING RETURNING true)"]
    arguments: list[Any] = [message_id, topic]
    if messages:
        published, outbox_arguments = outbox_rows(first + 2, messages, "EXISTS (SELECT FROM seen)")
        parts.append(published)
        arguments += outbox_arguments
    return ", ".join(parts), arguments


def outbox_rows(first: int, messages: Sequence[OutgoingMessage], when: str) -> tuple[str, list[Any]]:
    """Outbox rows (in order) as a CTE, ``published``, for a statement of the caller's own, with their arguments
    (parameters numbered from `first`): written only if `when`, an SQL condition that may read the statement's
    earlier CTEs (what makes the statement's change happen once: a new inbox row, a new receipt), holds."""
    return f"published AS ({_insert_outbox(first, when)})", list(_outbox_columns(messages))


_PRODUCER_STATE_ERRORS = (
    OutOfOrderSequenceNumber,
    DuplicateSequenceNumber,
    InvalidProducerEpoch,
    ProducerFenced,
    ClusterAuthorizationFailedError,
)


def never_accepted(error: BaseException) -> bool:
    """Whether Kafka will refuse this row however often it is sent (as opposed to Kafka being down or busy)."""
    if isinstance(error, (MessageSizeTooLargeError, RecordTooLargeError, InvalidTopicError)):
        return True
    if isinstance(error, (UnknownTopicOrPartitionError, TopicAuthorizationFailedError)):
        return True  # aiokafka raises these only after waiting for the topic's metadata
    if isinstance(error, BrokerResponseError):
        return not error.retriable and not isinstance(error, _PRODUCER_STATE_ERRORS)
    return isinstance(error, (TypeError, ValueError, UnicodeError))  # a row that cannot even be encoded


class OutboxRelay:
    """Publishes outbox rows to Kafka in id order, then deletes them (with its next read of the outbox, in one statement).

    One relay per database holds an advisory lock and publishes; replicas wait on standby. It wakes
    on NOTIFY from the outbox trigger and also polls, so nothing waits forever. A publish that
    fails for a passing reason leaves its rows in place: they go again (consumers' inboxes absorb
    the repeat). A row Kafka will never accept is moved to `outbox_failed` with the error, and the
    rows after it go on. Any other failure restarts the loop after a backoff; `healthy` says
    whether the last round went through.
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
        self._last_round = 0.0
        self._failing = False
        self._published: list[int] = []
        """Ids the last round published, deleted with the next read of the outbox."""

    @property
    def healthy(self) -> bool:
        """Whether the relay is running and its last round (publish, or wait for leadership) went through."""
        if self._task is None or self._task.done() or self._failing:
            return False
        return time.monotonic() - self._last_round < max(30.0, self._poll_seconds * 8)

    def start(self) -> None:
        """Starts the relay loop in the background."""
        self._last_round = time.monotonic()
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
            except Exception as error:  # noqa: BLE001 - the relay is restarted whatever failed
                self._failing = True
                self.is_leader = False
                delay = await anext(delays)
                self._metrics.relay_restarts.inc()
                self._log.warning(
                    "outbox relay failed, restarting", error=type(error).__name__, detail=str(error)[:300], retry_in_s=delay
                )
                await asyncio.sleep(delay)
            else:
                delays = backoff_delays(self._retry_max_seconds)

    def _round_done(self) -> None:
        self._last_round = time.monotonic()
        self._failing = False

    async def _lead_and_publish(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self._dsn, timeout=5)
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _RELAY_LOCK_KEY):
                self._round_done()
                await asyncio.sleep(self._poll_seconds * 4)
            self.is_leader = True
            await conn.add_listener("outbox", self._on_notify)
            while True:
                self._wake.clear()  # a row committed after the next read's snapshot wakes the relay again
                rows = await self._next_rows(conn, self._published)
                self._published = await self._publish_batch(conn, rows) if rows else []
                self._round_done()
                if len(rows) < self._batch_size:  # what it published is deleted when it wakes (at most a poll later)
                    await self._wait_for_work()
        finally:
            self.is_leader = False
            await self._forget_published(conn)
            conn.terminate()

    async def _forget_published(self, conn: asyncpg.Connection) -> None:
        """On the way out (stopped, or failing), deletes the rows the last round published if the connection still can,
        so a stopped relay does not make its successor publish them again."""
        published, self._published = self._published, []
        if not published or conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", published), 2)
        except (asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            pass  # they go again; the consumers' inboxes absorb the repeat

    def _on_notify(self, *_args: Any) -> None:
        self._wake.set()

    async def _wait_for_work(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)
        except asyncio.TimeoutError:
            pass

    async def _next_rows(self, conn: asyncpg.Connection, sent: list[int]) -> list[asyncpg.Record]:
        """Deletes the rows the last round published and reads the next ones, in one statement (the read's snapshot
        still holds the deleted rows, hence the filter). Until then a published row stays, for a poll interval at most:
        a relay that dies in between publishes it again, which the consumers' inboxes absorb."""
        return await conn.fetch(
            "WITH published AS (DELETE FROM outbox WHERE id = ANY($2::bigint[]))"
            " SELECT id, topic, key, headers, payload FROM outbox WHERE id <> ALL($2::bigint[]) ORDER BY id LIMIT $1",
            self._batch_size,
            sent,
        )

    async def _publish_batch(self, conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> list[int]:
        """Publishes `rows` in order; returns the ids of those Kafka took, left for the next round to delete. When
        any was refused, the ones taken are deleted at once and the refused ones sorted out (moved aside, or the
        error raised to restart the loop: only the rows not yet published go again)."""
        queued = await self._enqueue(rows)
        # gathered as the producer's futures themselves (no task per row); a row refused at once keeps its error
        futures = [item for item in queued if not isinstance(item, BaseException)]
        results = iter(await asyncio.gather(*futures, return_exceptions=True))
        outcomes = [item if isinstance(item, BaseException) else next(results) for item in queued]
        sent = [row["id"] for row, outcome in zip(rows, outcomes) if not isinstance(outcome, BaseException)]
        self._metrics.outbox_published.inc(len(sent))
        if len(sent) == len(rows):
            return sent
        await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", sent)
        for row, item, outcome in zip(rows, queued, outcomes):
            if not isinstance(outcome, BaseException):
                continue
            if not never_accepted(outcome):
                raise outcome
            if isinstance(item, BaseException):
                await self._move_aside(conn, row, outcome)
            else:
                await self._publish_alone(conn, row)  # the whole producer batch failed: find the row to blame
        return []

    async def _enqueue(self, rows: Sequence[asyncpg.Record]) -> list[Any]:
        """Hands every row to the producer in id order; a row refused at once carries its error instead."""
        queued: list[Any] = []
        for row in rows:
            arguments = _send_arguments(row)
            try:
                with producer_span(arguments["topic"], arguments["headers"]) as headers:
                    queued.append(await self._producer.send(**{**arguments, "headers": headers}))
            except Exception as error:  # noqa: BLE001 - sorted out per row by the caller
                queued.append(error)
        return queued

    async def _publish_alone(self, conn: asyncpg.Connection, row: asyncpg.Record) -> None:
        """Sends a row that failed within a batch on its own; moves it aside if Kafka refuses it for good."""
        try:
            await (await self._producer.send(**_send_arguments(row)))
        except Exception as error:
            if not never_accepted(error):
                raise
            await self._move_aside(conn, row, error)
        else:
            await conn.execute("DELETE FROM outbox WHERE id = $1", row["id"])
            self._metrics.outbox_published.inc()

    async def _move_aside(self, conn: asyncpg.Connection, row: asyncpg.Record, error: BaseException) -> None:
        reason = f"{type(error).__name__}: {error}".replace("\x00", "")[:2000]
        async with conn.transaction():
            await conn.execute(
                """
                INSERT INTO outbox_failed (id, topic, key, headers, payload, created_at, error)
                SELECT id, topic, key, headers, payload, created_at, $2 FROM outbox WHERE id = $1
                ON CONFLICT (id) DO NOTHING
                """,
                row["id"],
                reason,
            )
            await conn.execute("DELETE FROM outbox WHERE id = $1", row["id"])
        self._metrics.outbox_failed.inc()
        self._log.error("outbox row Kafka will never accept moved to outbox_failed", outbox_id=row["id"], topic=row["topic"], error=type(error).__name__)


def _send_arguments(row: asyncpg.Record) -> dict[str, Any]:
    return {"topic": row["topic"], "value": row["payload"], "key": row["key"], "headers": decode_headers(row["headers"])}


async def outbox_backlog(conn: asyncpg.Connection | asyncpg.Pool) -> tuple[int, float]:
    """Unpublished outbox rows and the age in seconds of the oldest (0 when there is none)."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) AS age FROM outbox"
    )
    return int(row["n"]), float(row["age"])
