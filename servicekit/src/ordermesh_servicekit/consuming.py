"""How a service consumes: decode, dedupe through the inbox, handle in one transaction, dead-letter what can never succeed."""

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any, AsyncIterator, Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

import asyncpg
import httpx
import structlog
from pydantic import BaseModel, TypeAdapter, ValidationError

from ordermesh_contracts import CommandRejected, Message, topics
from ordermesh_contracts.topics import dead_letter_topic

from .database import TRANSIENT_DB_ERRORS, backoff_delays
from .logging import redact_text
from .metrics import Metrics
from .outbox import OutgoingMessage, write_outbox


class TransientError(Exception):
    """Something outside the service failed in a way that passes (a gateway's 5xx, a timeout): retry."""


class PermanentError(Exception):
    """The message can never succeed (impossible state): dead-letter it with this reason."""


class CommandRefusedError(Exception):
    """Base of `commands.CommandRefused`: the consumer answers the command with its reasons, nothing else is kept."""

    reasons: list[str]


class DuplicateMessage(Exception):
    """The inbox already holds this message id: its effect is in the database already."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,
    httpx.TransportError,
    *TRANSIENT_DB_ERRORS,
)


class Record(Protocol):
    """The parts of a Kafka consumer record the pipeline reads (aiokafka's ConsumerRecord has them)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


class UnitOfWork:
    """One transaction: the connection to change this service's tables, and messages to publish on commit."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.outgoing: list[OutgoingMessage] = []

    def publish(self, topic: str, message: Message, key: str | None = None) -> None:
        """Queues `message` for `topic`; it is written to the outbox in this transaction."""
        self.outgoing.append(OutgoingMessage.of(topic, message, key))


@dataclass
class MessageContext:
    """What a handler gets besides the message: the pool and a unit of work guarded by the inbox."""

    pool: asyncpg.Pool
    message_id: UUID
    topic: str
    log: Any

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """Opens the message's transaction; raises `DuplicateMessage` if the inbox has seen it."""
        async with self.pool.acquire() as conn, conn.transaction():
            first_time = await conn.fetchval(
                "INSERT INTO inbox (message_id, topic) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
                self.message_id,
                self.topic,
            )
            if not first_time:
                raise DuplicateMessage(str(self.message_id))
            uow = UnitOfWork(conn)
            yield uow
            await write_outbox(conn, uow.outgoing)

    @asynccontextmanager
    async def intent(self) -> AsyncIterator[asyncpg.Connection]:
        """A transaction that records an intent before a side effect outside the database (no inbox row)."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def already_processed(self) -> bool:
        """Whether the inbox holds this message (checked before a side effect outside the database)."""
        return bool(await self.pool.fetchval("SELECT true FROM inbox WHERE message_id = $1", self.message_id))


Handler = Callable[[Any, MessageContext], Awaitable[None]]
InvalidMessageHook = Callable[[Mapping[str, Any] | None, list[str]], list[OutgoingMessage]]


@dataclass
class Subscription:
    """A topic this service reads, the handler for each contract it cares about, and what to do with junk.

    Contracts of the topic without a handler here are skipped; an unknown `type` is dead-lettered.
    `on_invalid` may return messages to publish about an invalid one (e.g. a rejection to the shop).
    """

    topic: str
    contract: Any
    handlers: Mapping[type[BaseModel], Handler]
    on_invalid: InvalidMessageHook | None = None
    description: str = ""
    known_types: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.known_types = frozenset(_type_names(self.contract))
        self._models = {model.model_fields["type"].default: model for model in self.handlers}

    def model_for(self, message_type: str) -> type[BaseModel] | None:
        """The model to decode `message_type` with, if this service handles it."""
        return self._models.get(message_type)


def _type_names(contract: Any) -> Iterable[str]:
    schema = TypeAdapter(contract).json_schema()
    for definition in [schema, *schema.get("$defs", {}).values()]:
        const = definition.get("properties", {}).get("type", {}).get("const")
        if const:
            yield const


class DeadLetter(Exception):
    """Internal: the record goes to the dead-letter topic with this error class and reason."""

    def __init__(self, error_class: str, reason: str, raw: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.error_class = error_class
        self.reason = reason
        self.raw = raw


class Consumer:
    """Processes records of one subscription in order; never lets one bad record stop the stream."""

    def __init__(
        self,
        subscription: Subscription,
        *,
        group_id: str,
        pool_provider: Callable[[], asyncpg.Pool],
        metrics: Metrics,
        retry_max_seconds: float,
        concurrency: int = 1,
    ) -> None:
        self.subscription = subscription
        self._concurrency = asyncio.Semaphore(concurrency)
        self.group_id = group_id
        self.service = group_id.removeprefix("ordermesh-")
        self._pool = pool_provider
        self._metrics = metrics
        self._retry_max_seconds = retry_max_seconds
        self._log = structlog.get_logger("consumer")

    async def process(self, records: Iterable[Record]) -> None:
        """Handles a batch; returns once every record is committed to the database or dead-lettered.

        Records with the same partition and key (one order) are handled one after another, in order;
        different keys are handled concurrently, up to the consumer's concurrency.
        """
        lanes: dict[tuple[int, bytes | None], list[Record]] = {}
        for record in records:
            lanes.setdefault((record.partition, record.key), []).append(record)
        await asyncio.gather(*(self._process_lane(lane) for lane in lanes.values()))

    async def _process_lane(self, lane: list[Record]) -> None:
        async with self._concurrency:
            for record in lane:
                with structlog.contextvars.bound_contextvars(
                    topic=record.topic, partition=record.partition, offset=record.offset
                ):
                    outcome = await self._process_one(record)
                    self._metrics.messages(record.topic, outcome).inc()
                    self._log.debug("message handled", outcome=outcome)

    async def _process_one(self, record: Record) -> str:
        try:
            message, handler = self._decode(record)
        except DeadLetter as invalid:
            await self._retrying(partial(self._dead_letter, record, invalid))
            return "dead_lettered"
        if message is None:
            return "skipped"
        bound = {"event_id": str(message.event_id), "correlation_id": str(message.correlation_id)}
        if order_id := getattr(message, "order_id", None):
            bound["order_id"] = str(order_id)
        with structlog.contextvars.bound_contextvars(**bound):
            context = MessageContext(self._pool(), message.event_id, record.topic, self._log)
            try:
                with self._metrics.handle_seconds.time():
                    await self._retrying(partial(handler, message, context))
            except DuplicateMessage:
                return "duplicate"
            except CommandRefusedError as refused:
                await self._retrying(partial(self._answer_refusal, message, refused))
                return "refused"
            except (PermanentError, Exception) as error:  # noqa: BLE001 - anything else can never succeed
                self._log.exception("message failed, dead-lettering", error=type(error).__name__)
                failed = DeadLetter(type(error).__name__, redact_text(str(error)) or type(error).__name__)
                await self._retrying(partial(self._dead_letter, record, failed))
                return "dead_lettered"
        return "processed"

    def _decode(self, record: Record) -> tuple[Message | None, Handler | None]:
        try:
            raw = json.loads(record.value or b"")
        except json.JSONDecodeError as error:
            raise DeadLetter("InvalidJson", f"not JSON: {error.msg} at position {error.pos}") from None
        except UnicodeDecodeError as error:
            raise DeadLetter("InvalidJson", f"not JSON: {error.reason} at position {error.start}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            raise DeadLetter("MissingType", "not a JSON object with a string 'type'", raw if isinstance(raw, dict) else None)
        message_type = raw["type"]
        model = self.subscription.model_for(message_type)
        if model is None:
            if message_type in self.subscription.known_types:
                return None, None
            raise DeadLetter("UnknownMessageType", f"type {message_type!r} is not a contract of {record.topic}", raw)
        try:
            message = model.model_validate(raw)
        except ValidationError as error:
            raise DeadLetter("ContractViolation", "; ".join(describe_validation_error(error)), raw) from None
        return message, self.subscription.handlers[model]

    async def _retrying(self, attempt: Callable[[], Awaitable[None]]) -> None:
        delays = backoff_delays(self._retry_max_seconds)
        while True:
            try:
                return await attempt()
            except TRANSIENT_ERRORS as error:
                delay = await anext(delays)
                self._metrics.retries.inc()
                self._log.warning("transient failure, retrying", error=type(error).__name__, retry_in_s=delay)
                await asyncio.sleep(delay)

    async def _answer_refusal(self, command: Message, refused: "CommandRefusedError") -> None:
        reply = CommandRejected(
            command_id=command.event_id,
            command_type=command.type,
            service=self.service,
            reasons=refused.reasons,
            **command.caused(),
        )
        async with self._pool().acquire() as conn, conn.transaction():
            first_time = await conn.fetchval(
                "INSERT INTO inbox (message_id, topic) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
                command.event_id,
                self.subscription.topic,
            )
            if first_time:
                await write_outbox(conn, [OutgoingMessage.of(topics.OPS_REPLIES, reply)])

    async def _dead_letter(self, record: Record, dead: DeadLetter) -> None:
        reasons = dead.reason.split("; ")
        extra = self.subscription.on_invalid(dead.raw, reasons) if self.subscription.on_invalid else []
        headers = [
            *[(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq.")],
            ("dlq.original_topic", record.topic.encode()),
            ("dlq.original_partition", str(record.partition).encode()),
            ("dlq.original_offset", str(record.offset).encode()),
            ("dlq.consumer_group", self.group_id.encode()),
            ("dlq.error_class", dead.error_class.encode()),
            ("dlq.error_message", redact_text(dead.reason)[:2000].encode()),
            ("dlq.failed_at", datetime.now(timezone.utc).isoformat().encode()),
        ]
        letter = OutgoingMessage(dead_letter_topic(record.topic), record.key, record.value or b"", headers)
        position_id = uuid5(NAMESPACE_URL, f"dlq:{self.group_id}:{record.topic}:{record.partition}:{record.offset}")
        async with self._pool().acquire() as conn, conn.transaction():
            first_time = await conn.fetchval(
                "INSERT INTO inbox (message_id, topic) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
                position_id,
                record.topic,
            )
            if first_time:
                await write_outbox(conn, [letter, *extra])
        self._log.warning("dead-lettered", error_class=dead.error_class, reason=redact_text(dead.reason)[:500])


def describe_validation_error(error: ValidationError) -> list[str]:
    """Readable reasons from a pydantic error, without the offending input values (they may be personal)."""
    return [
        f"{'.'.join(str(part) for part in item['loc']) or '(message)'}: {item['msg']}"
        for item in error.errors(include_input=False, include_url=False)
    ]
