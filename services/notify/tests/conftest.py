"""Fixtures of the notify store tests."""

from collections.abc import AsyncIterator

import asyncpg
import pytest
from support import migrated_pool


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    """The notify database, migrated (room for the concurrency tests' connections)."""
    async with migrated_pool(fresh_database, "notify", max_size=12) as created:
        yield created
