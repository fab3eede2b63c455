"""Fixtures shared by every test folder: a real PostgreSQL, fresh databases, and the whole running suite."""

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from ordermesh_devstack.postgres import LocalPostgres
from ordermesh_devstack.stack import LocalStack, StackConfig


@pytest.fixture(scope="session")
def admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A superuser DSN: `DATABASE_URL` if set, else a real PostgreSQL started for this test session."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    server = LocalPostgres(tmp_path_factory.mktemp("postgres"))
    dsn = server.start()
    try:
        yield dsn
    finally:
        server.stop()


@pytest.fixture
async def fresh_database(admin_dsn: str) -> AsyncIterator[str]:
    """A new empty database for one test; dropped afterwards."""
    name = f"test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    """The whole suite (real Kafka, real PostgreSQL, sandboxes, five services), once per test session."""
    run_dir: Path = tmp_path_factory.mktemp("stack")
    suite = LocalStack(StackConfig(run_dir=run_dir, ship_delay_seconds=0.2, payments_check_seconds=2.0))
    try:
        await suite.start()
        yield suite
    finally:
        await asyncio.to_thread(suite.stop)
