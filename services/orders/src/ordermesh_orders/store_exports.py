"""Queries of the orders exports."""

import json
from datetime import datetime
from typing import Any

import asyncpg

EXPORT_LIMIT = 50_000


async def orders_to_export(
    conn: asyncpg.Connection, shop_id: str, created_from: datetime | None, created_to: datetime | None
) -> list[dict[str, Any]]:
    """The shop's orders created in [from, to), oldest first, with their contents (never the card token)."""
    rows = await conn.fetch(
        """
        SELECT order_id, external_order_no, channel, created_at, stage, payment_method, currency, total,
               snapshot #- '{payment,card_token}' AS contents
        FROM orders
        WHERE shop_id = $1 AND ($2::timestamptz IS NULL OR created_at >= $2) AND ($3::timestamptz IS NULL OR created_at < $3)
        ORDER BY created_at, order_id
        LIMIT $4
        """,
        shop_id,
        created_from,
        created_to,
        EXPORT_LIMIT,
    )
    return [{**dict(row), "contents": json.loads(row["contents"])} for row in rows]
