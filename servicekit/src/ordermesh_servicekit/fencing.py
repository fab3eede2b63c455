"""Fencing across replicas: one replica at a time handles a partition's records, whatever a rebalance does.

When Kafka moves a partition from replica A to replica B in the middle of A's batch, B fetches from the last
committed offset and gets records A is still handling. Without a fence both would run the same side effect
(a mail, a gateway call) at the same time. The fence is a PostgreSQL session advisory lock per (topic,
partition), held on a connection of its own while a batch is handled and its offsets committed: B waits until A's
batch has ended, then finds those records in the inbox. If A dies, its connection closes and the lock goes with it,
so a crashed replica never holds anyone up.
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


def _columns(pairs: list[tuple[str, int]]) -> tuple[list[str], list[int]]:
    return [topic for topic, _ in pairs], [partition for _, partition in pairs]


class PartitionFence:
    """Holds advisory locks on the partitions of the batch being handled (one connection per service consumer)."""

    def __init__(self, dsn: str, retry_max_seconds: float = 5.0) -> None:
        self._dsn = dsn
        self._retry_max_seconds = retry_max_seconds
        self._conn: asyncpg.Connection | None = None
        self._log = structlog.get_logger("fence")

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn, timeout=5)
        return self._conn

    @asynccontextmanager
    async def holding(self, partitions: Iterable[tuple[str, int]]) -> AsyncIterator[None]:
        """Waits until no other replica handles any of `partitions` (topic, partition), and keeps them until the block ends.

        Locks are taken in (topic, partition) order, so two replicas never wait on each other.
        """
        wanted = sorted(set(partitions))
        delays = backoff_delays(self._retry_max_seconds)
        while True:
            try:
                conn = await self._connection()
                await conn.execute(_LOCK_IN_ORDER, *_columns(wanted))
                break
            except TRANSIENT_DB_ERRORS as error:
                if self._conn is not None:
                    self._conn.terminate()
                delay = await anext(delays)
                self._log.warning("fence not available, retrying", error=type(error).__name__, retry_in_s=delay)
                await asyncio.sleep(delay)
        try:
            yield
        finally:
            await self._release(conn, wanted)

    async def _release(self, conn: asyncpg.Connection, held: list[tuple[str, int]]) -> None:
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


async def try_partition_lock(conn: asyncpg.Connection, topic: str, partition: int) -> bool:
    """Takes the fence of one partition on `conn` if nobody holds it (never waits); release with `unlock_partition`."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1), $2)", topic, partition))


async def unlock_partition(conn: asyncpg.Connection, topic: str, partition: int) -> None:
    """Releases a fence taken with `try_partition_lock`."""
    await conn.execute("SELECT pg_advisory_unlock(hashtext($1), $2)", topic, partition)
