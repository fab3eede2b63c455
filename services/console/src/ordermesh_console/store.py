"""SQL of the console: staff accounts, sessions, and the commands it sent with their replies."""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from .domain.roles import Role


@dataclass(frozen=True)
class Account:
    """A staff member of the console."""

    username: str
    display_name: str
    role: Role
    language: str
    active: bool


@dataclass(frozen=True)
class Session:
    """A logged-in staff member and the CSRF token every form of the session must carry."""

    account: Account
    csrf_token: str
    expires_at: datetime


def _account(row: asyncpg.Record) -> Account:
    return Account(row["username"], row["display_name"], Role(row["role"]), row["language"], row["active"])


def token_hash(token: str) -> bytes:
    """What is stored of a session token."""
    return hashlib.sha256(token.encode()).digest()


async def create_account(
    conn: asyncpg.Connection, username: str, display_name: str, role: Role, password_hash: str, created_by: str
) -> bool:
    """Creates an account; False when the name is taken."""
    inserted = await conn.fetchval(
        """
        INSERT INTO staff_accounts (username, display_name, role, password_hash, created_by)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username) DO NOTHING RETURNING true
        """,
        username, display_name, role.value, password_hash, created_by,
    )
    return bool(inserted)


async def password_hash_of(conn: asyncpg.Connection, username: str) -> tuple[Account, str] | None:
    """An active account and its password hash, for a login."""
    row = await conn.fetchrow("SELECT * FROM staff_accounts WHERE username = $1 AND active", username)
    return (_account(row), row["password_hash"]) if row else None


async def accounts(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every account, by name, without password hashes."""
    rows = await conn.fetch(
        "SELECT username, display_name, role, language, active, created_at, created_by, last_login_at "
        "FROM staff_accounts ORDER BY username"
    )
    return [dict(row) for row in rows]


async def update_account(
    conn: asyncpg.Connection, username: str, *, role: Role | None = None, active: bool | None = None,
    password_hash: str | None = None, language: str | None = None,
) -> bool:
    """Changes an account's role, state, password or language; a deactivated account's sessions end."""
    updated = await conn.fetchval(
        """
        UPDATE staff_accounts SET role = COALESCE($2, role), active = COALESCE($3, active),
               password_hash = COALESCE($4, password_hash), language = COALESCE($5, language)
        WHERE username = $1 RETURNING true
        """,
        username, role.value if role else None, active, password_hash, language,
    )
    if active is False or password_hash is not None:
        await conn.execute("DELETE FROM staff_sessions WHERE username = $1", username)
    return bool(updated)


async def start_session(
    conn: asyncpg.Connection, token: str, username: str, csrf_token: str, lifetime: timedelta
) -> None:
    """Records a new session and the login time."""
    await conn.execute(
        "INSERT INTO staff_sessions (token_hash, username, csrf_token, expires_at) VALUES ($1, $2, $3, now() + $4)",
        token_hash(token), username, csrf_token, lifetime,
    )
    await conn.execute("UPDATE staff_accounts SET last_login_at = now() WHERE username = $1", username)


async def session(conn: asyncpg.Connection, token: str) -> Session | None:
    """The live session of a token: not expired, of an active account."""
    row = await conn.fetchrow(
        """
        SELECT a.*, s.csrf_token, s.expires_at FROM staff_sessions s JOIN staff_accounts a USING (username)
        WHERE s.token_hash = $1 AND s.expires_at > now() AND a.active
        """,
        token_hash(token),
    )
    return Session(_account(row), row["csrf_token"], row["expires_at"]) if row else None


async def end_session(conn: asyncpg.Connection, token: str) -> None:
    """Logs a session out (and drops expired ones while at it)."""
    await conn.execute("DELETE FROM staff_sessions WHERE token_hash = $1 OR expires_at < now()", token_hash(token))


async def record_sent(
    conn: asyncpg.Connection, command_id: UUID, *, issued_by: str, command_type: str, topic: str, shop_id: str,
    order_ids: list[UUID], batch_id: UUID | None = None,
) -> None:
    """Records a command before it is published, so one without a reply still shows."""
    await conn.execute(
        """
        INSERT INTO sent_commands (command_id, batch_id, issued_by, command_type, topic, shop_id, order_ids)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        command_id, batch_id, issued_by, command_type, topic, shop_id, order_ids,
    )


async def record_reply(conn: asyncpg.Connection, command_id: UUID, reply: dict[str, Any]) -> None:
    """Records a command's reply."""
    await conn.execute(
        "UPDATE sent_commands SET reply = $2::jsonb, replied_at = now() WHERE command_id = $1",
        command_id, json.dumps(reply, ensure_ascii=False),
    )


def _sent(row: asyncpg.Record) -> dict[str, Any]:
    return {**dict(row), "reply": json.loads(row["reply"]) if row["reply"] else None}


async def sent_command(conn: asyncpg.Connection, command_id: UUID) -> dict[str, Any] | None:
    """One sent command with its reply (None while there is none)."""
    row = await conn.fetchrow("SELECT * FROM sent_commands WHERE command_id = $1", command_id)
    return _sent(row) if row else None


async def sent_for_order(conn: asyncpg.Connection, order_id: UUID, limit: int = 50) -> list[dict[str, Any]]:
    """Commands the console sent about an order, newest first."""
    rows = await conn.fetch(
        "SELECT * FROM sent_commands WHERE order_ids @> ARRAY[$1::uuid] ORDER BY sent_at DESC LIMIT $2", order_id, limit
    )
    return [_sent(row) for row in rows]


async def sent_in_batch(conn: asyncpg.Connection, batch_id: UUID) -> list[dict[str, Any]]:
    """The commands of one bulk action, oldest first."""
    rows = await conn.fetch("SELECT * FROM sent_commands WHERE batch_id = $1 ORDER BY sent_at, command_id", batch_id)
    return [_sent(row) for row in rows]
