"""Fencing across replicas: one replica at a time handles a partition's records, whatever a rebalance does.

When Kafka moves a partition from replica A to replica B in the middle of A's batch, B fetches from the last
committed offset and gets records A is still handling. Without a fence both would run the same side effect
(a mail, a gateway call) at the same time. The fence is a PostgreSQL session advisory lock per (topic,
partition), held on a connection of its own while a batch is handled and its offsets committed: B waits until A's
batch has ended, then finds those records in the inbox. If A dies, its connection closes and the lock goes with it,
so a crashed replica never holds anyone up.

A busy consumer keeps its fences between batches (`PartitionFence.keep`): the next batch that needs no partition
beyond them takes them without a statement, and one that does gives them back and takes them all again, in order, in
one statement. Kept fences go back once the consumer has been idle for a moment, loses its partitions or stops
(see `subscribing.BetweenBatches`), so a replica given a partition waits for at most that moment after the last batch.
"""

import asyncio
from collections.abc import Iterable
from contextlib import asynccontextmanager
from typing import AsyncIterator

import asyncpg
import structlog

from .database import TRANSIENT_DB_ERRORS, backoff_delays


# One round trip for every pair of a batch; rows (and so locks) come in the arrays' order.
_LOCK_IN_ORDER = "SELECT pg_advisory_lock(hashtext(t), p) FROM unnest($1::text[], $2::int[]) WITH ORDINALITY AS u(t, p, n) ORDER BY n"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext(t), p) FROM unnest($1::text[], $2::int[]) AS u(t, p)"
# The kept locks ($1, $2) go back in a one-time filter, evaluated before the first row is locked: advisory locks count,
# so taking a kept lock again without giving it back would leave it held after the batch.
_RELOCK_IN_ORDER = (
    "SELECT pg_advisory_lock(hashtext(t), p) FROM unnest($3::text[], $4::int[]) WITH ORDINALITY AS u(t, p, n)"
    " WHERE (SELECT count(pg_advisory_unlock(hashtext(r), q)) FROM unnest($1::text[], $2::int[]) AS v(r, q)) >= 0"
    " ORDER BY n"
)


def _columns(pairs: list[tuple[str, int]]) -> tuple[list[str], list[int]]:
    return [topic for topic, _ in pairs], [partition for _, partition in pairs]


class PartitionFence:
    """Holds advisory locks on the partitions of the batch being handled (one connection per service consumer)."""

    def __init__(self, dsn: str, retry_max_seconds: float = 5.0) -> None:
        self._dsn = dsn
        self._retry_max_seconds = retry_max_seconds
        self._conn: asyncpg.Connection | None = None
        self._kept: list[tuple[str, int]] = []
        self._keep = False
        self._log = structlog.get_logger("fence")

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn, timeout=5)
        return self._conn

    @asynccontextmanager
    async def holding(self, partitions: Iterable[tuple[str, int]]) -> AsyncIterator[None]:
        """Waits until no other replica handles any of `partitions` (topic, partition), and keeps them until the block
        ends (or, if the block called `keep`, until `release_kept`).

        Locks are taken in (topic, partition) order, and only while holding none, so two replicas never wait on each
        other. Partitions kept from earlier blocks are taken again along with these.
        """
        wanted = sorted(set(partitions))
        self._keep = False
        if self._kept and set(wanted) <= set(self._kept):
            wanted = self._kept
        else:
            wanted = await self._take(sorted(set(wanted) | set(self._kept)))
        self._kept = []
        try:
            yield
        except BaseException:
            await self._release(wanted)
            raise
        if self._keep:
            self._kept = wanted
        else:
            await self._release(wanted)

    def keep(self) -> None:
        """Keeps the partitions of the current `holding` block held after it ends (see `release_kept`)."""
        self._keep = True

    async def release_kept(self) -> None:
        """Gives back what `keep` kept, if anything."""
        kept, self._kept = self._kept, []
        if kept:
            await self._release(kept)

    async def _take(self, wanted: list[tuple[str, int]]) -> list[tuple[str, int]]:
        kept = self._kept
        delays = backoff_delays(self._retry_max_seconds)
        while True:
            try:
                conn = await self._connection()
                if kept:
                    await conn.execute(_RELOCK_IN_ORDER, *_columns(kept), *_columns(wanted))
                else:
                    await conn.execute(_LOCK_IN_ORDER, *_columns(wanted))
                return wanted
            except TRANSIENT_DB_ERRORS as error:
                if self._conn is not None:
                    self._conn.terminate()  # and with it every lock it held, the kept ones too
                kept = []
                delay = await anext(delays)
                self._log.warning("fence not available, retrying", error=type(error).__name__, retry_in_s=delay)
                await asyncio.sleep(delay)

    async def _release(self, held: list[tuple[str, int]]) -> None:
        conn = self._conn
        if conn is None or conn.is_closed():
            return  # closed connections hold no lock
        try:
            await conn.execute(_UNLOCK, *_columns(held))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
            # A connection that cannot unlock is closed: PostgreSQL then drops every lock it held.
            self._log.warning("fence connection lost; its locks are released with it", error=type(error).__name__)
            conn.terminate()

    async def close(self) -> None:
        """Closes the connection (and so releases anything still held)."""
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
        self._conn = None
        self._kept = []


async def try_partition_lock(conn: asyncpg.Connection, topic: str, partition: int) -> bool:
    """Takes the fence of one partition on `conn` if nobody holds it (never waits); release with `unlock_partition`."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1), $2)", topic, partition))


async def unlock_partition(conn: asyncpg.Connection, topic: str, partition: int) -> None:
    """Releases a fence taken with `try_partition_lock`."""
    await conn.execute("SELECT pg_advisory_unlock(hashtext($1), $2)", topic, partition)
