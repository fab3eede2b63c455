"""How a service consumes: decode, dedupe through the inbox, handle in one transaction, dead-letter what can never succeed.

Every record ends in exactly one outcome — processed, duplicate, skipped, refused or dead-lettered —
whatever raises and wherever. What cannot be given an outcome (the database refusing even a
sanitized dead letter) escapes `Consumer.process`, and the caller gives the batch back to Kafka.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, get_args

import asyncpg
import httpx
import structlog
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from pydantic import BaseModel

from ordermesh_contracts import CommandRejected, Message, topics

from .database import TRANSIENT_DB_ERRORS, backoff_delays, is_transient_db_error
from .dead_letters import DEFAULT_MAX_BYTES, dead_letter, fits, safe_text, sanitized_dead_letter, write_dead_letter
from .decoding import DeadLetter, Record, decode, describe_validation_error, skipped_unread
from .logging import LazyFields
from .logging import bound as bound_to_log
from .metrics import Metrics
from .outbox import OutgoingMessage, write_outbox
from .parking import DependencyMissing, Parking
from .tracing import consumer_span
from .unit_of_work import (
    Batched, BatchContext, ClaimingPreload, DuplicateMessage, Finish, MessageContext, NotBatchable, Preload, UnitOfWork,
    apply_in_one_transaction,
)

__all__ = [
    "CommandRefusedError",
    "Consumer",
    "DeadLetter",
    "DuplicateMessage",
    "MessageContext",
    "PermanentError",
    "Record",
    "Subscription",
    "TransientError",
    "UnitOfWork",
    "describe_validation_error",
]


class TransientError(Exception):
    """Something outside the service failed in a way that passes (a gateway's 5xx, a timeout): retry."""


class PermanentError(Exception):
    """The message can never succeed (impossible state): dead-letter it with this reason."""


class CommandRefusedError(Exception):
    """Base of `commands.CommandRefused`: the consumer answers the command with its reasons, nothing else is kept."""

    reasons: list[str]


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,
    httpx.TransportError,
    KafkaConnectionError,
    KafkaTimeoutError,
    *TRANSIENT_DB_ERRORS,
)


def is_transient(error: BaseException) -> bool:
    """Whether `error` passes with time (a dependency unreachable or timing out): retried without limit."""
    return isinstance(error, TRANSIENT_ERRORS) or is_transient_db_error(error)


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
    batched: bool = False
    """Whether a batch's records may be applied in one transaction: only when every handler here touches nothing but
    its unit of work (no pool, no intent, no call outside the database before or after it), or when `alone` picks
    out the messages whose handling does."""
    alone: Callable[[Message], bool] | None = None
    """In a batched subscription, whether a message must be handled by itself (its handler calls something outside
    the database): it never joins a batch, and the records of its key after it wait and go one at a time, in order."""
    preload: Preload | ClaimingPreload | None = None
    """In a batched subscription, reads once per batch (in its transaction, after the inbox, given the messages to be
    handled) what the handlers would each read, e.g. every order of the batch locked in one statement; handlers find
    the result in `ctx.preloaded`. Outside a batch nothing is preloaded and handlers load as they would without it.
    What it returns must stay true while the batch's handlers write (see the orders' `lock_batch_orders`); if it
    raises, the batch is undone and its records go one at a time, as when a handler raises. A `ClaimingPreload`
    writes the batch's inbox rows with its first statement instead (given every message of the batch, duplicates
    too; see `InboxClaim`)."""
    finish: Finish | None = None
    """In a batched subscription with a `preload`, runs once after the batch's handlers (in its transaction, before
    its outbox rows), given what `preload` returned: writes what the handlers left there to write together, e.g. every
    order the batch changed saved in one statement (see the orders' `BatchOrders`); given the batch's outbox rows too,
    it may write them in that statement, and returns whether it did. Outside a batch handlers write as they go, and
    nothing is left to finish."""
    only: Mapping[type[BaseModel], Iterable[Any]] = field(default_factory=dict)
    """For a contract with a `HEADER_FIELD` (e.g. OrderProgressed: `to_stage`), the values of that field whose messages
    this service acts on; the others are skipped, by their header without reading their values (by the field, read,
    when a record has no such header). E.g. `{OrderProgressed: {Stage.READY_TO_SHIP}}`."""
    known_types: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.known_types = frozenset(_type_names(self.contract))
        self._models = {model.model_fields["type"].default: model for model in self.handlers}
        self._wanted: dict[type[BaseModel], frozenset[str]] = {}
        for model, values in self.only.items():
            if model not in self.handlers or getattr(model, "HEADER_FIELD", None) is None:
                raise ValueError(f"{model.__name__} in `only` needs a handler here and a HEADER_FIELD")
            self._wanted[model] = frozenset(str(getattr(value, "value", value)) for value in values)

    def model_for(self, message_type: str) -> type[BaseModel] | None:
        """The model to decode `message_type` with, if this service handles it."""
        return self._models.get(message_type)

    def wanted_values(self, model: type[BaseModel]) -> frozenset[str] | None:
        """The values of `model`'s HEADER_FIELD whose messages are handled here; None: every message of `model`."""
        return self._wanted.get(model)


def _type_names(contract: Any) -> Iterable[str]:
    """The `type` of every model in `contract` (a model, or a union of them, possibly `Annotated`).

    Read from the models' fields rather than a JSON schema: building the schema of a topic's union took
    most of a service's start-up after its imports.
    """
    if isinstance(contract, type) and issubclass(contract, BaseModel):
        field_info = contract.model_fields.get("type")
        if field_info is not None and isinstance(field_info.default, str):
            yield field_info.default
        return
    for argument in get_args(contract):
        yield from _type_names(argument)


NOT_DECODED = object()


class Decoded:
    """Messages decoded while a batch was built, by record, so that records left to be handled one at a time (the
    batch too small, undone, or stopped at a record that goes alone) are not decoded a second time. Messages are
    frozen, so one a rolled-back handler saw is the same message again."""

    def __init__(self) -> None:
        self._messages: dict[int, Message | None] = {}

    def keep(self, record: Record, message: Message | None) -> None:
        """Remembers `record`'s message (None: a contract this service skips)."""
        self._messages[id(record)] = message  # records live as long as the batch that holds them and this map

    def of(self, record: Record) -> Message | None | object:
        """`record`'s message, or NOT_DECODED."""
        return self._messages.get(id(record), NOT_DECODED)


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
        handler_attempts: int = 3,
        dead_letter_max_bytes: int = DEFAULT_MAX_BYTES,
        parking: Parking | None = None,
        batch_lock: asyncio.Lock | None = None,
    ) -> None:
        self.subscription = subscription
        # One batch transaction at a time in a process: two holding many orders' locks could deadlock each other.
        self._batch_lock = batch_lock or asyncio.Lock()
        self._concurrency = asyncio.Semaphore(concurrency)
        self.group_id = group_id
        self.service = group_id.removeprefix("ordermesh-")
        self._pool = pool_provider
        self._metrics = metrics
        self._retry_max_seconds = retry_max_seconds
        self._handler_attempts = max(1, handler_attempts)
        self._dead_letter_max_bytes = dead_letter_max_bytes
        self._log = structlog.get_logger("consumer")
        # structlog's filter drops a line below the level only after building its event: ask the level first
        self._enabled_for = logging.getLogger("consumer").isEnabledFor
        self._parking = parking
        self._unbatchable: set[str] = set()
        if parking is not None:
            parking.register(subscription.topic, self.rehandle, self._dead_letter_parked)

    async def process(self, records: Iterable[Record]) -> None:
        """Handles a batch; returns once every record has its outcome in the database.

        Records whose headers say this service does not act on them are skipped first, unread. The others with the
        same partition and key (one order) are handled one after another, in order; different keys are handled
        concurrently, up to the consumer's concurrency. If a record cannot be given an outcome, the error propagates
        (the other lanes are cancelled): commit nothing.
        """
        lanes: dict[tuple[int, bytes | None], list[Record]] = {}
        skipped = 0
        for record in records:
            if skipped_unread(record, self.subscription):
                skipped += 1  # its headers say this service does not act on it: no lane, no decoding, no log binding
                continue
            lanes.setdefault((record.partition, record.key), []).append(record)
        if skipped:
            self._metrics.messages(self.subscription.topic, "skipped").inc(skipped)
        if not lanes:
            return
        parked: dict[bytes, str] = {}
        if self._parking is not None:
            parked = await self._retrying(
                partial(self._parking.parked_keys, self.subscription.topic, [key for _, key in lanes])
            )
        decoded = Decoded()
        if self.subscription.batched:
            lanes = await self._process_batched(lanes, parked, decoded)
        if len(lanes) == 1:
            # no task for a batch of one order (as at low load); an escaping error is grouped as the TaskGroup does
            ((_, key), lane), = lanes.items()
            try:
                await self._process_lane(lane, parked.get(key), decoded)
            except Exception as error:
                raise ExceptionGroup("unhandled errors in a TaskGroup", [error]) from None
            return
        async with asyncio.TaskGroup() as lanes_running:
            for (_, key), lane in lanes.items():
                lanes_running.create_task(self._process_lane(lane, parked.get(key), decoded))

    async def _process_batched(
        self, lanes: dict[tuple[int, bytes | None], list[Record]], parked: Mapping[bytes, str], decoded: Decoded
    ) -> dict[tuple[int, bytes | None], list[Record]]:
        """Applies the head of every lane in one transaction (up to a record that is invalid, that goes alone, of a
        type that proved unbatchable, or of a parked order); returns what is left to handle one at a time, all of it
        if the batch failed. A lane's rest is handled after its head is committed, so one order's records stay in
        order."""
        batch: list[Batched] = []
        rest: dict[tuple[int, bytes | None], list[Record]] = {}
        for lane_key, lane in lanes.items():
            for index, record in enumerate(lane):
                item = None if lane_key[1] in parked else self._batchable(record, decoded)
                if item is None:
                    rest[lane_key] = lane[index:]
                    break
                batch.append(item)
        if sum(1 for item in batch if item.message is not None) < 2:
            return lanes
        try:
            await self._apply_batch(batch)
        except NotBatchable as unbatchable:
            self._log.info("handler cannot share a batch; its type is handled one at a time", reason=str(unbatchable))
            return lanes
        except Exception as error:  # noqa: BLE001 - nothing of the batch was kept: one at a time finds the culprit
            self._log.info("batch undone; its records are handled one at a time", error=type(error).__name__)
            return lanes
        log_handled = self._enabled_for(logging.INFO)
        for item in batch:
            self._metrics.messages(item.record.topic, item.outcome).inc()
            if item.message is None:
                continue
            if log_handled:
                with bound_to_log(handled=HandledFields(item.message, item.record)):
                    self._log.info("message handled", outcome=item.outcome, duration_ms=round(item.seconds * 1000, 1), batched=len(batch))
            if item.outcome == "processed" and self._parking is not None and getattr(item.message, "order_id", None):
                self._parking.applied(item.message.order_id)
        return rest

    def _batchable(self, record: Record, decoded: Decoded) -> Batched | None:
        try:
            message = decode(record, self.subscription)
        except DeadLetter:
            return None
        decoded.keep(record, message)
        if message is not None and (message.type in self._unbatchable or self._goes_alone(message)):
            return None
        return Batched(record, message)

    def _goes_alone(self, message: Message) -> bool:
        return self.subscription.alone is not None and self.subscription.alone(message)

    async def _apply_batch(self, batch: list[Batched]) -> None:
        current: list[str] = []

        async def handle(item: Batched, context: BatchContext) -> None:
            current[:] = [item.message.type]
            started = time.perf_counter()
            fields = HandledFields(item.message, item.record)
            with bound_to_log(handled=fields), consumer_span(item.record, item.message.type, fields.span_attributes):
                await self.subscription.handlers[type(item.message)](item.message, context)
            item.seconds = time.perf_counter() - started
            self._metrics.handle_seconds(item.message.type).observe(item.seconds)

        try:
            await apply_in_one_transaction(
                self._pool(), self._batch_lock, self.subscription.topic, batch, handle, self._log, self.subscription.preload,
                self.subscription.finish,
            )
        except NotBatchable:
            # raised before any handler ran (the preload): none of the batch's types can share one
            self._unbatchable.update(current or {item.message.type for item in batch if item.message is not None})
            raise

    async def _process_lane(self, lane: list[Record], parked_for: str | None, decoded: Decoded) -> None:
        """`parked_for`: the lane's order has parked messages (waiting for that), so these wait behind them.
        `decoded`: messages already decoded for a batch that left these records to be handled one at a time."""
        async with self._concurrency:
            for record in lane:
                with bound_to_log(topic=record.topic, partition=record.partition, offset=record.offset):
                    if parked_for is not None and self._parking is not None:
                        await self._retrying(
                            partial(self._parking.park, record, parked_for, "behind an earlier parked message of its key")
                        )
                        outcome = "parked"
                    else:
                        outcome = await self._process_one(record, decoded.of(record))
                    if outcome == "parked" and record.key is not None:
                        parked_for = parked_for or record.key.decode(errors="replace")
                    self._metrics.messages(record.topic, outcome).inc()

    async def rehandle(self, record: Record) -> str:
        """Handles a parked record again, as if Kafka delivered it once more; returns its outcome."""
        with bound_to_log(topic=record.topic, partition=record.partition, offset=record.offset, parked=True):
            outcome = await self._process_one(record)
            self._metrics.messages(record.topic, outcome).inc()
            return outcome

    async def _dead_letter_parked(self, record: Record, reason: str) -> None:
        await self._dead_letter(record, DeadLetter("DependencyMissing", reason))

    async def _process_one(self, record: Record, message: Message | None | object = NOT_DECODED) -> str:
        """Gives the record its outcome and logs one line about it (at INFO: the order's story in this service);
        `message`: the record's message if it was decoded already."""
        started = time.perf_counter()
        try:
            if message is NOT_DECODED:
                message = decode(record, self.subscription)
        except DeadLetter as invalid:
            outcome = await self._dead_letter(record, invalid)
            if self._enabled_for(logging.INFO):
                self._log.info("message handled", outcome=outcome, error_class=invalid.error_class, duration_ms=_ms_since(started))
            return outcome
        if message is None:
            if self._enabled_for(logging.DEBUG):
                self._log.debug("message handled", outcome="skipped")
            return "skipped"
        fields = HandledFields(message)
        order_id = getattr(message, "order_id", None)
        with bound_to_log(handled=fields), consumer_span(record, message.type, fields.span_attributes) as span:
            outcome = await self._handle_message(record, message)
            span.set_attribute("ordermesh.outcome", outcome)
            elapsed = time.perf_counter() - started
            self._metrics.handle_seconds(message.type).observe(elapsed)
            if self._enabled_for(logging.INFO):
                actor = {"actor": str(message.issued_by)} if getattr(message, "issued_by", None) else {}
                self._log.info("message handled", outcome=outcome, duration_ms=round(elapsed * 1000, 1), **actor)
        if outcome == "processed" and self._parking is not None and order_id:
            self._parking.applied(order_id)
        return outcome

    async def _handle_message(self, record: Record, message: Message) -> str:
        context = MessageContext(self._pool(), message.event_id, record.topic, self._log)
        handler = self.subscription.handlers[type(message)]
        try:
            await self._handle(handler, message, context)
        except DuplicateMessage:
            return "duplicate"
        except DependencyMissing as missing:
            if self._parking is None:
                return await self._dead_letter(record, DeadLetter("DependencyMissing", missing.reason))
            await self._retrying(partial(self._parking.park, record, missing.waiting_for, missing.reason))
            return "parked"
        except CommandRefusedError as refused:
            return await self._refuse(record, message, refused)
        except Exception as error:  # noqa: BLE001 - retries are spent: it can never succeed
            self._log.exception("message failed, dead-lettering", error=type(error).__name__)
            return await self._dead_letter(record, DeadLetter(type(error).__name__, str(error) or type(error).__name__))
        return "processed"

    async def _handle(self, handler: Handler, message: Message, context: MessageContext) -> None:
        """Runs the handler; transient failures are retried without limit, others a bounded number of times."""
        failures = 0
        transient_delays = backoff_delays(self._retry_max_seconds)
        while True:
            try:
                return await handler(message, context)
            except (DuplicateMessage, CommandRefusedError, PermanentError, DependencyMissing):
                raise
            except Exception as error:
                if is_transient(error):
                    delay = await anext(transient_delays)
                    self._metrics.retries.inc()
                    self._log.warning("transient failure, retrying", error=type(error).__name__, retry_in_s=delay)
                else:
                    failures += 1
                    if failures >= self._handler_attempts:
                        raise
                    delay = min(0.2 * 2 ** (failures - 1), self._retry_max_seconds)
                    self._metrics.handler_retries.inc()
                    self._log.warning(
                        "handler failed, retrying", error=type(error).__name__, attempt=failures, retry_in_s=delay
                    )
                await asyncio.sleep(delay)

    async def _retrying(self, attempt: Callable[[], Awaitable[Any]]) -> Any:
        """Runs a write of the consumer's own, retrying only transient failures (without limit)."""
        delays = backoff_delays(self._retry_max_seconds)
        while True:
            try:
                return await attempt()
            except Exception as error:
                if not is_transient(error):
                    raise
                delay = await anext(delays)
                self._metrics.retries.inc()
                self._log.warning("transient failure, retrying", error=type(error).__name__, retry_in_s=delay)
                await asyncio.sleep(delay)

    async def _refuse(self, record: Record, command: Message, refused: CommandRefusedError) -> str:
        try:
            await self._retrying(partial(self._answer_refusal, command, refused))
        except Exception as error:  # noqa: BLE001 - an answer that cannot be written: dead-letter the command
            self._log.exception("refusal could not be answered, dead-lettering", error=type(error).__name__)
            reasons = "; ".join(getattr(refused, "reasons", []) or [str(refused)])
            return await self._dead_letter(record, DeadLetter("CommandRefused", reasons))
        return "refused"

    async def _answer_refusal(self, command: Message, refused: CommandRefusedError) -> None:
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

    async def _dead_letter(self, record: Record, dead: DeadLetter) -> str:
        """Writes the record's dead letter: as it is if possible, else in sanitized form with the original kept."""
        letter = dead_letter(record, dead, self.group_id)
        why = f"larger than {self._dead_letter_max_bytes} bytes"
        if fits(letter, self._dead_letter_max_bytes):
            extra = self._messages_about_invalid(dead)
            for messages in ([letter, *extra], [letter]) if extra else ([letter],):
                try:
                    await self._retrying(partial(self._write_letter, record, dead, messages, None))
                    return "dead_lettered"
                except Exception as error:  # noqa: BLE001 - fall back to a simpler letter
                    why = f"{type(error).__name__} writing it as it is"
                    self._log.warning("dead letter refused, simplifying", error=type(error).__name__, detail=safe_text(str(error), 300))
        sanitized = sanitized_dead_letter(record, dead, self.group_id, why, self._dead_letter_max_bytes)
        await self._retrying(partial(self._write_letter, record, dead, [sanitized], why))
        self._metrics.dead_letters_sanitized.inc()
        return "dead_lettered"

    def _messages_about_invalid(self, dead: DeadLetter) -> list[OutgoingMessage]:
        if self.subscription.on_invalid is None:
            return []
        try:
            return list(self.subscription.on_invalid(dead.raw, dead.reason.split("; ")))
        except Exception as error:  # noqa: BLE001 - the letter goes without the hook's messages
            self._log.warning("on_invalid hook failed; dead-lettering without its messages", error=type(error).__name__)
            return []

    async def _write_letter(
        self, record: Record, dead: DeadLetter, messages: list[OutgoingMessage], keep_original_because: str | None
    ) -> None:
        async with self._pool().acquire() as conn, conn.transaction():
            await write_dead_letter(conn, record, self.group_id, messages, keep_original_because=keep_original_because)
        self._log.warning(
            "dead-lettered", error_class=safe_text(dead.error_class, 200), reason=safe_text(dead.reason, 500),
            sanitized=keep_original_because is not None,
        )


class HandledFields(LazyFields):
    """What every log line about a handled message carries: its ids and type, and its record's place when `record` is
    given (one at a time, the lane has bound that already). Worked out only for a line that is written."""

    __slots__ = ("message", "record")

    def __init__(self, message: Message, record: Record | None = None) -> None:
        self.message = message
        self.record = record

    def fields(self) -> dict[str, Any]:
        message = self.message
        fields: dict[str, Any] = _place(self.record) if self.record is not None else {}
        fields.update(event_id=str(message.event_id), correlation_id=str(message.correlation_id), type=message.type)
        if order_id := getattr(message, "order_id", None):
            fields["order_id"] = str(order_id)
        if shop_order_no := getattr(message, "external_order_no", None):
            fields["shop_order_no"] = str(shop_order_no)
        return fields

    def span_attributes(self) -> dict[str, Any]:
        """The ordermesh attributes of the message's consumer span."""
        fields = self.fields()
        return {
            "ordermesh.order_id": fields.get("order_id"), "ordermesh.shop_order_no": fields.get("shop_order_no"),
            "ordermesh.event_id": fields["event_id"],
        }


def _place(record: Record) -> dict[str, Any]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
