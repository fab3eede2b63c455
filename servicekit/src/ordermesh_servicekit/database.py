"""asyncpg pool creation that waits for PostgreSQL, and the errors that mean 'try again'."""

import asyncio
import socket
from typing import Any

import asyncpg
import structlog

TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.AdminShutdownError,
    ConnectionError,
    socket.gaierror,
    OSError,
    asyncio.TimeoutError,
)
"""Database errors that pass with time: retried with backoff, never dead-lettered."""


async def backoff_delays(max_seconds: float):
    """Yields growing delays (0.2 s doubling up to `max_seconds`) forever."""
    delay = 0.2
    while True:
        yield delay
        delay = min(delay * 2, max_seconds)


async def create_pool_when_ready(
    dsn: str, *, size: int, max_wait_seconds: float, log: Any = None, **kwargs: Any
) -> asyncpg.Pool:
    """Creates an asyncpg pool, waiting with one clear log line per attempt until PostgreSQL answers."""
    log = log or structlog.get_logger(__name__)
    attempt = 0
    async for delay in backoff_delays(max_wait_seconds):
        attempt += 1
        try:
            return await asyncpg.create_pool(dsn, min_size=1, max_size=size, timeout=5, **kwargs)
        except TRANSIENT_DB_ERRORS + (asyncpg.InvalidCatalogNameError,) as error:
            log.warning(
                "postgres not reachable yet, retrying",
                attempt=attempt,
                retry_in_s=delay,
                error=type(error).__name__,
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
