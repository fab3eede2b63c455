"""Numbered .sql migrations: applied in order under an advisory lock, checksummed, never edited once applied."""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

_MIGRATION_LOCK_KEY = 0x6F6D6D67  # any constant shared by every replica of a service
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
KIT_MIGRATIONS = Path(__file__).parent / "migrations"


class MigrationError(RuntimeError):
    """The migrations on disk and the ones applied disagree; a person must look."""


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def read_migrations(component: str, directory: Path) -> list[Migration]:
    """The migrations in `directory`, ordered by number; refuses odd names and duplicate numbers."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: a migration is named NNNN_snake_case.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: number {version} is used twice")
        found[version] = Migration(component, version, match.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


async def apply_migrations(conn: asyncpg.Connection, migrations: list[Migration]) -> list[Migration]:
    """Applies what is not applied yet, each in its own transaction; returns what it applied.

    Serialised across replicas by an advisory lock. An applied migration whose file changed since
    raises `MigrationError`: fix forward with a new file instead.
    """
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                component  text        NOT NULL,
                version    integer     NOT NULL,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (component, version)
            )
            """
        )
        rows = await conn.fetch("SELECT component, version, name, checksum FROM schema_migrations")
        applied = {(r["component"], r["version"]): r for r in rows}
        done: list[Migration] = []
        for migration in migrations:
            row = applied.get((migration.component, migration.version))
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"{migration.component} migration {migration.version:04d}_{row['name']} was edited "
                        "after it was applied; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4)",
                    migration.component,
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            done.append(migration)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)


async def migrate_service(conn: asyncpg.Connection, service: str, directory: Path) -> list[Migration]:
    """Applies the kit's tables (inbox, outbox) and then the service's own migrations."""
    return await apply_migrations(
        conn, read_migrations("servicekit", KIT_MIGRATIONS) + read_migrations(service, directory)
    )
