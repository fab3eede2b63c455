"""SQL of the notify service: order contacts and the mail log."""

import json
from typing import Any
from uuid import UUID

import asyncpg


async def save_contact(
    conn: asyncpg.Connection,
    *,
    order_id: UUID,
    shop_id: str,
    external_order_no: str,
    email: str | None,
    name: str,
    device: str,
    summary: dict[str, Any],
) -> None:
    """Keeps who to mail about an order."""
    await conn.execute(
        """
        INSERT INTO contacts (order_id, shop_id, external_order_no, email, name, device, summary)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) ON CONFLICT DO NOTHING
        """,
        order_id,
        shop_id,
        external_order_no,
        email,
        name,
        device,
        json.dumps(summary),
    )


async def contact(conn: asyncpg.Connection, order_id: UUID) -> asyncpg.Record | None:
    """Who to mail about an order."""
    return await conn.fetchrow("SELECT * FROM contacts WHERE order_id = $1", order_id)


async def begin_mail(
    conn: asyncpg.Connection, *, mail_id: UUID, order_id: UUID, kind: str, cause_id: UUID, recipient: str, subject: str, body: str
) -> str:
    """Records the intent to send (or one more attempt); returns the mail's status before this attempt."""
    return await conn.fetchval(
        """
        INSERT INTO mail_log (mail_id, order_id, kind, cause_id, status, recipient, subject, body, attempts)
        VALUES ($1, $2, $3, $4, 'sending', $5, $6, $7, 1)
        ON CONFLICT (order_id, kind, cause_id) DO UPDATE SET attempts = mail_log.attempts + 1
        RETURNING (SELECT status FROM mail_log WHERE mail_id = $1)
        """,
        mail_id,
        order_id,
        kind,
        cause_id,
        recipient,
        subject,
        body,
    )


async def finish_mail(conn: asyncpg.Connection, *, mail_id: UUID, status: str, reason: str | None = None) -> None:
    """Records how sending ended."""
    await conn.execute(
        """
        UPDATE mail_log SET status = $2, reason = $3, sent_at = CASE WHEN $2 = 'sent' THEN now() END
        WHERE mail_id = $1
        """,
        mail_id,
        status,
        reason,
    )


async def log_unsendable(
    conn: asyncpg.Connection, *, mail_id: UUID, order_id: UUID, kind: str, cause_id: UUID, status: str, reason: str
) -> None:
    """Records a mail that does not go out, with the reason."""
    await conn.execute(
        """
        INSERT INTO mail_log (mail_id, order_id, kind, cause_id, status, reason)
        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
        """,
        mail_id,
        order_id,
        kind,
        cause_id,
        status,
        reason,
    )
