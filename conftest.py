"""Fixtures shared by every test folder: a real PostgreSQL, fresh databases, and the whole running suite."""

import asyncio
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from ordermesh_devstack.browser import ensure_chromium
from ordermesh_devstack.helm import ensure_helm
from ordermesh_devstack.postgres import LocalPostgres
from ordermesh_devstack.stack import LocalStack, StackConfig


# One-time installs some tests need, by the test file that needs them: minutes each on a fresh machine.
_SLOW_PREREQUISITES = {"test_helm_chart.py": ensure_helm, "test_console_browser.py": ensure_chromium}


_ROOT_SESSIONS_DIR = Path(tempfile.gettempdir()) / "ordermesh-pytest-of-root"
_STALE_SESSION_SECONDS = 2 * 24 * 3600


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """As root, gives this session a base temporary directory of its own instead of the shared /tmp/pytest-of-root.

    PostgreSQL runs as an unprivileged system user (it refuses root), so its data directory must stay traversable.
    Every pytest session started as root sets /tmp/pytest-of-root back to mode 0700, which cut the PostgreSQL of any
    session already running on the machine off from its own files (it PANICs on pg_control). A directory per session
    is touched by no other session. xdist workers inherit the controller's basetemp, so only the controller picks one.
    """
    if os.geteuid() != 0 or config.option.basetemp is not None:
        return
    _ROOT_SESSIONS_DIR.mkdir(mode=0o711, exist_ok=True)
    for old in _ROOT_SESSIONS_DIR.iterdir():
        if time.time() - old.stat().st_mtime > _STALE_SESSION_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
    config.option.basetemp = tempfile.mkdtemp(prefix="session-", dir=_ROOT_SESSIONS_DIR)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Starts the slow one-time installs the collected tests need (helm built from the Go module proxy, Debian's
    chromium) in background threads, so they overlap with the rest of the run instead of adding to it; the fixtures
    that need them wait on the same file locks and re-raise any failure themselves."""
    needed = {_SLOW_PREREQUISITES[item.path.name] for item in session.items if item.path.name in _SLOW_PREREQUISITES}
    for install in needed:
        threading.Thread(target=_quietly, args=(install,), name=f"prewarm-{install.__name__}", daemon=True).start()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Groups the tests for `pytest -n N --dist loadgroup` (what `make test` runs): every module with a test on the
    shared running suite goes to one worker (one suite per run, its tests in file order); every other module stays
    whole on one worker, so a module's own broker or stack is started once."""
    on_suite = {item.path for item in items if "stack" in getattr(item, "fixturenames", ())}
    for item in items:
        item.add_marker(pytest.mark.xdist_group("suite" if item.path in on_suite else str(item.path)))


def _quietly(install) -> None:
    try:
        install()
    except Exception:  # noqa: BLE001 - the test that needs it calls it again and reports the error there
        pass


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
