"""asyncpg pool creation that waits for PostgreSQL, and the errors that mean 'try again'."""

import asyncio
import errno
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
    asyncio.TimeoutError,
)
"""Database errors that pass with time: retried with backoff, never dead-lettered."""

_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ENETRESET,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
    }
)


def is_transient_db_error(error: BaseException) -> bool:
    """Whether `error` means the database (or the network to it) is away for now, not that the work is wrong.

    Only connection-level OS errors count: a file not found or a permission denied is not transient.
    """
    if isinstance(error, TRANSIENT_DB_ERRORS):
        return True
    if not isinstance(error, OSError):
        return False
    # asyncio reports failed attempts at several addresses of one host as one errno-less OSError
    return error.errno in _NETWORK_ERRNOS or (error.errno is None and str(error).startswith("Multiple exceptions"))


async def backoff_delays(max_seconds: float):
    """Yields growing delays (0.2 s doubling up to `max_seconds`) forever."""
    delay = 0.2
    while True:
        yield delay
        delay = min(delay * 2, max_seconds)


async def keep_session(conn: asyncpg.Connection) -> None:
    """A pool's release step that keeps the session as it is (asyncpg still rolls back an open transaction).

    Nothing leaves session state on a pooled connection: advisory locks are released explicitly, LISTEN and SET
    are only used on connections of their own. Skipping asyncpg's reset query saves a round trip per release.
    """


async def prime_codecs(conn: asyncpg.Connection) -> None:
    """A pool's init step: looks up, once per connection, the array types the kit's statements take (the outbox's
    text[] and bytea[], the inbox's uuid[]), which asyncpg otherwise looks up in three round trips on first use."""
    await conn.prepare("SELECT $1::text[], $2::bytea[], $3::uuid[], $4::bigint[]")


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
        except Exception as error:
            if not (is_transient_db_error(error) or isinstance(error, asyncpg.InvalidCatalogNameError)):
                raise
            log.warning(
                "postgres not reachable yet, retrying",
                attempt=attempt,
                retry_in_s=delay,
                error=type(error).__name__,
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
