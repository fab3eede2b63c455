"""Fixtures of the kit's tests: a database migrated with the kit's tables and one table of changes."""

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import structlog

from ordermesh_servicekit.database import keep_session
from ordermesh_servicekit.migrations import migrate_service


@pytest.fixture
async def pool(fresh_database: str, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    """A pool like a service's on a fresh database with the kit's migrations and a `changes (what text)` table."""
    directory = tmp_path / "test_migrations"
    directory.mkdir()
    (directory / "0001_changes.sql").write_text("CREATE TABLE changes (what text);")
    connection = await asyncpg.connect(fresh_database)
    try:
        await migrate_service(connection, "test", directory)
    finally:
        await connection.close()
    database_pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=4, reset=keep_session)
    try:
        yield database_pool
    finally:
        await database_pool.close()


@pytest.fixture
def restore_logging():
    """Puts the root logger and structlog back as they were after a test that configures logging."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
