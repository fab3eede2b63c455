"""Fixtures of the points store tests."""

from collections.abc import AsyncIterator

import asyncpg
import pytest
from support import migrated_pool


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    """The points database, migrated (room for the concurrency tests' connections)."""
    async with migrated_pool(fresh_database, "points", max_size=12) as created:
        yield created
