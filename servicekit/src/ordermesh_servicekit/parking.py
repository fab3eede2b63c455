"""Parked messages: a message that arrived before what it depends on is kept, and handled again once that arrives.

Kafka orders one topic's partition, not two topics against each other: payments may read an order's
`ShipmentDelivered` before its `OrderAccepted` when a rebalance paused the other topic. A handler that finds
what it needs missing raises `DependencyMissing(order_id, reason)` inside its unit of work (so nothing of it is
kept, not even the inbox row); the consumer then parks the raw record here and commits its offset. The record's
later siblings (same topic and key) are parked behind it, so one order's messages are still applied in order.

A parked record is handled again (through the same consumer, as if Kafka delivered it once more):
- right after this service applied a message of the order it waits for (`release`), and
- by a sweep every `parked_retry_seconds` (for dependencies that came by another way, or raced the parking);
  one that still waits after `parked_max_seconds` is dead-lettered with error class `DependencyMissing`.
Only one replica re-handles a parked record at a time (a lease on the row plus the record's partition fence).
"""

import asyncio
import json
import os
import socket
from uuid import uuid4
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from .fencing import try_partition_lock, unlock_partition


class DependencyMissing(Exception):
    """The message depends on something this service has not seen yet: park it until `waiting_for` is applied.

    `waiting_for` names the dependency, normally the order id (the consumer re-handles parked records of an
    order after it applied any message of that order).
    """

    def __init__(self, waiting_for: object, reason: str) -> None:
        super().__init__(reason)
        self.waiting_for = str(waiting_for)
        self.reason = reason


@dataclass(frozen=True)
class ParkedRecord:
    """A parked Kafka record, as the consumer reads one."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def _encode_headers(headers: Any) -> str:
    return json.dumps([[k, v.hex() if isinstance(v, bytes | bytearray) else None] for k, v in (headers or ())])


def _decode_headers(text: str | None) -> list[tuple[str, bytes | None]]:
    return [(k, bytes.fromhex(v) if v is not None else None) for k, v in json.loads(text or "[]")]


def owner_name() -> str:
    """Who this process is, for leases: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


# Re-handles one record and says how it ended ("parked" if it still waits).
RecordHandler = Callable[[ParkedRecord], Awaitable[str]]
DeadLetterer = Callable[[ParkedRecord, str], Awaitable[None]]


class Parking:
    """The parked records of one service: park, and handle again when their dependency may be there."""

    def __init__(
        self,
        pool_provider: Callable[[], asyncpg.Pool],
        *,
        retry_seconds: float,
        max_seconds: float,
        lease_seconds: float = 60.0,
    ) -> None:
        self._pool = pool_provider
        self._retry_seconds = retry_seconds
        self._max_seconds = max_seconds
        self._lease_seconds = lease_seconds
        self._owner = owner_name()
        self._handlers: dict[str, RecordHandler] = {}
        self._dead_letterers: dict[str, DeadLetterer] = {}
        self._applied: set[str] = set()
        # Whether the last look at `parked` (by `parked_keys`) found it empty, with no record parked here and no
        # partition assigned here since: then `parked_keys` and `release` have nothing to look for. Another replica
        # parks only records of partitions it holds, and one of those reaches this replica only by an assignment
        # (`assignment_changed`); a record it parks meanwhile is found by the next sweep.
        self._none_parked = False
        self._parks = 0
        self._log = structlog.get_logger("parking")

    def register(self, topic: str, handle: RecordHandler, dead_letter: DeadLetterer) -> None:
        """How to re-handle (and finally dead-letter) parked records of `topic`."""
        self._handlers[topic] = handle
        self._dead_letterers[topic] = dead_letter

    async def park(self, record: Any, waiting_for: str, reason: str) -> None:
        """Keeps `record` until `waiting_for` is applied (idempotent: a redelivered record is parked once)."""
        self._parks += 1
        self._none_parked = False
        await self._pool().execute(
            """
            INSERT INTO parked (topic, partition, kafka_offset, key, value, headers, waiting_for, reason)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)
            ON CONFLICT (topic, partition, kafka_offset)
            DO UPDATE SET waiting_for = excluded.waiting_for, reason = excluded.reason, attempts = parked.attempts + 1
            """,
            record.topic, record.partition, record.offset, record.key, record.value or b"",
            _encode_headers(record.headers), waiting_for, reason[:1000],
        )
        self._log.info("message parked until its dependency arrives", waiting_for=waiting_for, reason=reason[:200])

    async def parked_keys(self, topic: str, keys: Iterable[bytes | None]) -> dict[bytes, str]:
        """Of `keys`, those with a parked record on `topic`, each with what its first parked record waits for."""
        wanted = [k for k in set(keys) if k is not None]
        if not wanted or self._none_parked:
            return {}
        parks = self._parks
        rows = await self._pool().fetch(
            """
            (SELECT DISTINCT ON (key) key, waiting_for FROM parked WHERE topic = $1 AND key = ANY($2::bytea[]) ORDER BY key, id)
            UNION ALL SELECT NULL, NULL WHERE EXISTS (SELECT FROM parked)
            """,
            topic, wanted,
        )
        if parks == self._parks:
            self._none_parked = not rows
        return {row["key"]: row["waiting_for"] for row in rows if row["key"] is not None}

    def assignment_changed(self) -> None:
        """Notes that partitions were assigned here: records another replica parked for them must be looked for."""
        self._none_parked = False

    def applied(self, waiting_for: object) -> None:
        """Notes that a message of `waiting_for` (an order id) was applied: its parked records may go on now."""
        self._applied.add(str(waiting_for))

    def has_releases_pending(self) -> bool:
        """Whether `release` has anything to look for (something applied since, and something may be parked)."""
        return bool(self._applied) and not self._none_parked

    async def release(self) -> None:
        """Re-handles parked records waiting for what was applied since the last call (nothing to look for if the
        batch found no parked record at all)."""
        if self._none_parked:
            self._applied.clear()
            return
        while self._applied:
            keys, self._applied = list(self._applied), set()
            await self._rehandle("waiting_for = ANY($1::text[])", keys)

    async def sweep(self) -> None:
        """Re-handles every parked record nobody holds; dead-letters those that waited longer than allowed."""
        await self._rehandle("true")
        await self.release()

    async def run_sweeps(self) -> None:
        """Sweeps every `retry_seconds` until cancelled; a failed sweep is logged and tried again."""
        while True:
            await asyncio.sleep(self._retry_seconds)
            try:
                await self.sweep()
            except Exception:  # noqa: BLE001 - a failed round is logged and tried again next interval
                self._log.exception("sweeping parked messages failed")

    async def _rehandle(self, condition: str, *args: Any) -> None:
        claimant = f"{self._owner}:{uuid4().hex[:8]}"
        rows = await self._claim(claimant, condition, *args)
        if not rows:
            return
        stopped: set[tuple[str, bytes | None]] = set()
        try:
            for row in rows:
                lane = (row["topic"], row["key"])
                if lane in stopped:
                    continue
                if not await self._rehandle_one(row):
                    stopped.add(lane)
        finally:
            await self._pool().execute(
                "UPDATE parked SET claimed_by = NULL, claimed_until = NULL WHERE id = ANY($1::bigint[]) AND claimed_by = $2",
                [row["id"] for row in rows], claimant,
            )

    async def _claim(self, claimant: str, condition: str, *args: Any) -> list[asyncpg.Record]:
        # Whole lanes (topic and key) nobody else holds are claimed, so a lane is re-handled from its head, in order.
        n = len(args)
        return await self._pool().fetch(
            f"""
            WITH lanes AS (SELECT DISTINCT topic, key FROM parked WHERE {condition}),
            free AS (
                SELECT l.topic, l.key FROM lanes l
                WHERE NOT EXISTS (
                    SELECT 1 FROM parked q WHERE q.topic = l.topic AND q.key IS NOT DISTINCT FROM l.key
                      AND q.claimed_until >= now()
                )
            ),
            claimed AS (
                UPDATE parked p SET claimed_by = ${n + 1}, claimed_until = now() + make_interval(secs => ${n + 2})
                FROM free
                WHERE p.topic = free.topic AND p.key IS NOT DISTINCT FROM free.key
                  AND (p.claimed_until IS NULL OR p.claimed_until < now())
                RETURNING p.*, (p.parked_at < now() - make_interval(secs => ${n + 3})) AS expired
            )
            SELECT * FROM claimed ORDER BY id
            """,
            *args, claimant, self._lease_seconds, self._max_seconds,
        )

    async def _rehandle_one(self, row: Mapping[str, Any]) -> bool:
        """Handles one parked record again; False if it still waits (or its partition is busy right now)."""
        record = ParkedRecord(
            row["topic"], row["partition"], row["kafka_offset"], row["key"], row["value"], _decode_headers(row["headers"])
        )
        handle = self._handlers.get(record.topic)
        if handle is None:
            return False
        async with self._pool().acquire() as fence:
            if not await try_partition_lock(fence, record.topic, record.partition):
                return False
            try:
                outcome = await handle(record)
                if outcome == "parked" and row["expired"]:
                    await self._dead_letterers[record.topic](
                        record, f"still waiting for {row['waiting_for']} after {self._max_seconds:.0f} s: {row['reason']}"
                    )
                    outcome = "dead_lettered"
                if outcome != "parked":
                    await fence.execute("DELETE FROM parked WHERE id = $1", row["id"])
                    self._log.info("parked message handled", outcome=outcome, topic=record.topic, offset=record.offset)
                    return True
                return False
            finally:
                await unlock_partition(fence, record.topic, record.partition)
