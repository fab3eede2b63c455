"""What the console reads from Kafka itself — pending dead letters and consumer lag — through the ops package's
functions (the same as `ordermesh dlq list` and `ordermesh lag`), each kept for a few seconds and read by one request
at a time, so busy pages don't each read every dead-letter topic and every group's offsets."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka.errors import KafkaError
from ordermesh_ops import deadletters
from ordermesh_ops.client import Connection
from ordermesh_ops.lag import consumer_lag, summarize

T = TypeVar("T")


@dataclass
class Recent(Generic[T]):
    """The last answer of `read` for `ttl` seconds; on a failure or a read slower than `timeout`, the reason."""

    read: Callable[[], Awaitable[T]]
    ttl: float
    timeout: float
    _value: T | str | None = None
    _at: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self) -> T | str:
        """The answer (or why there is none), read again once it is older than `ttl`."""
        async with self._lock:
            if time.monotonic() - self._at > self.ttl:
                try:
                    self._value = await asyncio.wait_for(self.read(), self.timeout)
                except (KafkaError, OSError, TimeoutError) as error:
                    self._value = f"not read from Kafka: {type(error).__name__}"
                self._at = time.monotonic()
            return self._value


class KafkaViews:
    """Pending dead letters (summaries, oldest first) and consumer lag per group and topic."""

    def __init__(self, connection: Connection, *, ttl: float = 5, timeout: float = 20) -> None:
        self._pending = Recent(lambda: self._read_pending(connection), ttl, timeout)
        self._lag = Recent(lambda: self._read_lag(connection), ttl, timeout)

    @staticmethod
    async def _read_pending(connection: Connection) -> list[dict[str, Any]]:
        return [letter.summary() for letter in await deadletters.list_dead_letters(connection, status="pending")]

    @staticmethod
    async def _read_lag(connection: Connection) -> list[dict[str, Any]]:
        return summarize(await consumer_lag(connection))

    async def pending_dead_letters(self) -> list[dict[str, Any]] | str:
        """Every pending dead letter's summary, or why they could not be read."""
        return await self._pending.get()

    async def lag(self) -> list[dict[str, Any]] | str:
        """Lag per service group and topic (partitions summed, the worst named), or why it could not be read."""
        return await self._lag.get()
