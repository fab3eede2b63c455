"""A handler's unit of work: one transaction per message guarded by the inbox, or a share of a batch's transaction.

A subscription whose handlers touch nothing but their unit of work (no pool, no intent, nothing outside the
database) may have its batches applied together (`Subscription.batched`; `Subscription.alone` names the messages
whose handling does, and those go one at a time): one transaction, the inbox rows of every message in one
statement, each handler on the shared connection, the outbox rows of every message in one statement.

A subscription's `preload` may read, once for the batch and in one statement, what its handlers would each read
(every order the batch touches, locked); handlers find it in their context (`preloaded`), and may leave writes in it
that its `finish` makes together, once, after the last handler (every order the batch changed, saved). If the
preload, any handler or the finish raises, the whole transaction is rolled back and every record of the batch is
handled again one at a time, where a failing record is retried, parked, refused or dead-lettered alone. A preload
that is a `ClaimingPreload` writes the batch's inbox rows in its first statement (`InboxClaim`), one round trip less.

A message handled alone has its inbox row written last, with its outbox rows, in one statement (see
`MessageContext.unit_of_work`); a handler whose every change fits in that statement needs no transaction at all
(`MessageContext.handled_in_one_statement`).
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from ordermesh_contracts import Message

from .decoding import Record
from .outbox import OutgoingMessage, record_handled, write_outbox


Preload = Callable[[asyncpg.Connection, list[Message]], Awaitable[Any]]
"""Reads, on a batch's connection and before its handlers run, what they would each read (see `Subscription.preload`)."""

Finish = Callable[[asyncpg.Connection, Any, Sequence[OutgoingMessage]], Awaitable[bool]]
"""Writes, on a batch's connection after its handlers ran, what they left to write together, and may write the batch's
outbox rows (given in order) in the same statement (`outbox.outbox_rows`): True if it did (see `Subscription.finish`)."""


async def write_batch(conn: asyncpg.Connection, batch: Any, publish: Sequence[OutgoingMessage]) -> bool:
    """The `Finish` of a subscription whose preload returns a batch object (orders' `BatchOrders`, points'
    `BatchPoints`, shipping's `BatchShipments`...): its `write(conn, publish)` writes what the batch's handlers left
    there, with the batch's outbox rows in the same statement, and says whether it did."""
    return await batch.write(conn, publish)


class DuplicateMessage(Exception):
    """The inbox already holds this message id: its effect is in the database already."""


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
    preloaded: Any = None
    """What the subscription's `preload` read for the batch this message is applied in; None outside a batch, where
    the handler loads what it needs itself."""

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """Opens the message's transaction; raises `DuplicateMessage` if the inbox has seen it.

        The inbox row is written at the end, with the outbox rows, in one statement: a message seen before is found
        there and its transaction, the handler's work included, rolled back. A handler that fails on a message the
        inbox holds (its effect already there, the order moved on) is a duplicate too, not a failure: the inbox is
        read then, on the rare failing path, before the error is let through."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                uow = UnitOfWork(conn)
                yield uow
                if not await record_handled(conn, self.message_id, self.topic, uow.outgoing):
                    raise DuplicateMessage(str(self.message_id))
        except DuplicateMessage:
            raise
        except Exception:
            if await self._seen_despite_failure():
                raise DuplicateMessage(str(self.message_id)) from None
            raise

    async def handled_in_one_statement(
        self, publish: Sequence[OutgoingMessage] = (), effects: str = "", effect_args: Sequence[Any] = ()
    ) -> None:
        """The message's whole unit of work as one statement outside any transaction (atomic on its own, one round
        trip): `effects` (data-modifying CTEs that read `seen`, see `record_handled`), its inbox row and `publish`'s
        outbox rows. Raises `DuplicateMessage`, having changed nothing, if the inbox holds the message already."""
        async with self.pool.acquire() as conn:
            if not await record_handled(conn, self.message_id, self.topic, publish, effects, effect_args):
                raise DuplicateMessage(str(self.message_id))

    async def _seen_despite_failure(self) -> bool:
        try:
            return await self.already_processed()
        except Exception:  # noqa: BLE001 - the handler's own error is the one to report (and retry, if transient)
            return False

    @asynccontextmanager
    async def intent(self) -> AsyncIterator[asyncpg.Connection]:
        """A transaction that records an intent before a side effect outside the database (no inbox row)."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def already_processed(self) -> bool:
        """Whether the inbox holds this message (checked before a side effect outside the database)."""
        return bool(await self.pool.fetchval("SELECT true FROM inbox WHERE message_id = $1", self.message_id))


class NotBatchable(BaseException):
    """A handler reached past its unit of work inside a batch (the pool, an intent, the inbox).

    A BaseException so that no handler's `except Exception` can hide it: the batch must be undone.
    """


class _NoPool:
    """The pool as a batched handler sees it: any use ends the batch."""

    def __getattr__(self, name: str) -> Any:
        raise NotBatchable(f"a batched handler used the pool ({name})")


class BatchContext(MessageContext):
    """A message's context inside a batch: its unit of work is the batch's transaction."""

    def __init__(
        self, message_id: Any, topic: str, log: Any, conn: asyncpg.Connection, outgoing: list[OutgoingMessage],
        preloaded: Any = None,
    ) -> None:
        super().__init__(_NoPool(), message_id, topic, log, preloaded)  # type: ignore[arg-type]
        self._conn = conn
        self._outgoing = outgoing

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """The batch's connection (its inbox row is already written); outgoing messages join the batch's."""
        uow = UnitOfWork(self._conn)
        yield uow
        self._outgoing.extend(uow.outgoing)

    @asynccontextmanager
    async def intent(self) -> AsyncIterator[asyncpg.Connection]:
        raise NotBatchable("a batched handler recorded an intent")
        yield self._conn  # pragma: no cover - never reached

    async def already_processed(self) -> bool:
        raise NotBatchable("a batched handler looked into the inbox")


@dataclass
class Batched:
    """A record of the batch and its message (None: a contract this service skips)."""

    record: Record
    message: Message | None
    outcome: str = "skipped"
    seconds: float = 0.0


_CLAIM = "INSERT INTO inbox (message_id, topic) SELECT DISTINCT unnest(${0}::uuid[]), ${1}::text ON CONFLICT DO NOTHING RETURNING message_id"


async def claim_inbox(conn: asyncpg.Connection, topic: str, batch: list[Batched]) -> None:
    """Writes the inbox rows of the batch's messages in one statement; marks those already there (or repeated in the
    batch) as duplicates and the others as to be processed."""
    ids = [item.message.event_id for item in batch if item.message is not None]
    rows = await conn.fetch(_CLAIM.format(1, 2), ids, topic)
    _mark_claimed(batch, {row["message_id"] for row in rows})


def _mark_claimed(batch: list[Batched], fresh: set[UUID]) -> None:
    for item in batch:
        if item.message is None:
            continue
        if item.message.event_id in fresh:
            fresh.discard(item.message.event_id)
            item.outcome = "processed"
        else:
            item.outcome = "duplicate"


class InboxClaim:
    """The inbox rows of a batch's messages, written by the first statement of its `ClaimingPreload` instead of a
    statement of their own (one round trip less a batch).

    `rows` gives them as CTEs for that statement, whose SELECT joins its own rows (a CTE of their own) to ``claimed``:
    ``SELECT * FROM claimed LEFT JOIN <its rows> ON true``. ``claimed`` is one row, so the statement returns a row even
    when it reads nothing; and it is read before the rows joined to it, so the inbox rows are written before anything
    the statement locks, as when they were a statement of their own. `read` takes the statement's rows, notes
    which messages it claimed (a message the inbox held, or repeated in the batch, is a duplicate) and gives back the
    statement's own rows; `fresh` then gives the messages to be processed, for the preload's later statements.

    The statement is given every message of the batch, duplicates too, since what it claims is known only once it ran:
    what it reads or locks for a duplicate is read or locked for nothing, and no handler runs for a duplicate."""

    COLUMN = "inbox_claimed"
    """The column of ``claimed`` in every row of the statement: the ids it wrote into the inbox."""

    def __init__(self, topic: str, batch: list[Batched]) -> None:
        self._topic = topic
        self._batch = batch
        self.done = False

    def rows(self, first: int) -> tuple[str, list[Any]]:
        """The batch's inbox rows as CTEs for the preload's first statement (``claim``, the rows written, and
        ``claimed``, their ids as one row), with their arguments (parameters numbered from `first`)."""
        ids = [item.message.event_id for item in self._batch if item.message is not None]
        claim = _CLAIM.format(first, first + 1)
        return f"claim AS ({claim}), claimed AS (SELECT array_agg(message_id) AS {self.COLUMN} FROM claim)", [ids, self._topic]

    def read(self, rows: Sequence[asyncpg.Record], present: str) -> list[asyncpg.Record]:
        """Notes the messages the statement claimed (those the others of the batch are duplicates of) and returns its
        own rows: those whose column `present` (one its rows never leave null) is not null."""
        _mark_claimed(self._batch, set(rows[0][self.COLUMN] or ()))
        self.done = True
        return [row for row in rows if row[present] is not None]

    async def fetch(self, conn: asyncpg.Connection, query: str, *arguments: Any, present: str) -> list[asyncpg.Record]:
        """Runs `query` (a SELECT with its parameters numbered from ``$1``) in one statement with the batch's inbox rows
        and returns its rows (`read`, `present` a column its rows never leave null)."""
        claimed, claim_arguments = self.rows(len(arguments) + 1)
        statement = f"WITH {claimed}, own AS ({query}) SELECT * FROM claimed LEFT JOIN own ON true"
        return self.read(await conn.fetch(statement, *arguments, *claim_arguments), present)

    def fresh(self) -> list[Message]:
        """The batch's messages to be processed, in order (once the claim is read)."""
        return [item.message for item in _to_process(self._batch)]


async def fetch_claiming(
    conn: asyncpg.Connection, claim: InboxClaim | None, query: str, *arguments: Any, present: str
) -> list[asyncpg.Record]:
    """The rows of `query` (a preload's first SELECT), with `claim` (a `ClaimingPreload`'s) written in the same
    statement (see `InboxClaim.fetch`); without one, as the query gives them."""
    if claim is None:
        return await conn.fetch(query, *arguments)
    return await claim.fetch(conn, query, *arguments, present=present)


@dataclass(frozen=True)
class ClaimingPreload:
    """A subscription's preload (see `Subscription.preload`) whose first statement writes the batch's inbox rows too:
    `read(conn, messages, claim)` is given every message of the batch (duplicates too) and the batch's `InboxClaim`,
    to write with that statement and read back from it. A preload that reads nothing for a batch (runs no statement)
    leaves the claim undone, and the batch writes its inbox rows itself, after it."""

    read: Callable[[asyncpg.Connection, list[Message], InboxClaim], Awaitable[Any]]


async def apply_in_one_transaction(
    pool: asyncpg.Pool,
    lock: asyncio.Lock,
    topic: str,
    batch: list[Batched],
    handle: Callable[[Batched, BatchContext], Awaitable[None]],
    log: Any,
    preload: Preload | ClaimingPreload | None = None,
    finish: Finish | None = None,
) -> None:
    """One transaction for the whole batch: its inbox rows, `preload` of the new messages (once; a `ClaimingPreload`
    of all of them, writing the inbox rows with its first statement), `handle` for each new message in order (its
    context carrying what was preloaded), `finish` with what was preloaded, its outbox rows (unless `finish` wrote them
    with its own). Anything raised rolls all of it back and propagates."""
    outgoing: list[OutgoingMessage] = []
    async with lock, pool.acquire() as conn, conn.transaction():
        if isinstance(preload, ClaimingPreload):
            preloaded = await _preload_claiming(conn, topic, batch, preload)
        else:
            await claim_inbox(conn, topic, batch)
            messages = [item.message for item in _to_process(batch)]
            preloaded = await preload(conn, messages) if preload is not None and messages else None
        for item in _to_process(batch):
            await handle(item, BatchContext(item.message.event_id, item.record.topic, log, conn, outgoing, preloaded))
        if finish is None or preloaded is None or not await finish(conn, preloaded, outgoing):
            await write_outbox(conn, outgoing)


def _to_process(batch: list[Batched]) -> list[Batched]:
    """The batch's records whose message its claim found new (neither skipped nor a duplicate)."""
    return [item for item in batch if item.outcome == "processed" and item.message is not None]


async def _preload_claiming(conn: asyncpg.Connection, topic: str, batch: list[Batched], preload: ClaimingPreload) -> Any:
    """What `preload` read for the batch, its inbox rows written with its first statement (or after it, by a statement
    of their own, if it ran none)."""
    claim = InboxClaim(topic, batch)
    messages = [item.message for item in batch if item.message is not None]
    preloaded = await preload.read(conn, messages, claim) if messages else None
    if not claim.done:
        await claim_inbox(conn, topic, batch)
    return preloaded
