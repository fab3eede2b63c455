"""SQL of operations' views of orders: orders that stopped moving, and counts per stage for metrics."""

from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg

FINAL = ["completed", "cancelled"]


async def idle_orders(
    conn: asyncpg.Connection, older_than: timedelta, *, shop_id: str | None = None, limit: int = 500
) -> list[asyncpg.Record]:
    """Orders not completed or cancelled whose stage, flags and mode have not changed for `older_than`, oldest first,
    with their count of open blocking tasks."""
    return await conn.fetch(
        """
        SELECT o.order_id, o.shop_id, o.external_order_no, o.stage, o.mode, o.payment_method, o.flags, o.held_from,
               o.created_at, o.updated_at, o.correlation_id,
               (SELECT count(*) FROM order_tasks t WHERE t.order_id = o.order_id AND t.status = 'open' AND t.blocking)
                   AS blocking_tasks
        FROM orders o
        WHERE o.stage <> ALL($1::text[]) AND o.updated_at < now() - $2::interval
          AND ($3::text IS NULL OR o.shop_id = $3)
        ORDER BY o.updated_at
        LIMIT $4
        """,
        FINAL,
        older_than,
        shop_id,
        limit,
    )


async def stage_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """How many orders are at each stage."""
    return {r["stage"]: r["n"] for r in await conn.fetch("SELECT stage, count(*) AS n FROM orders GROUP BY stage")}


async def idle_counts(conn: asyncpg.Connection, older_than: timedelta) -> dict[str, int]:
    """How many unfinished orders at each stage have not moved for `older_than`."""
    rows = await conn.fetch(
        "SELECT stage, count(*) AS n FROM orders WHERE stage <> ALL($1::text[]) AND updated_at < now() - $2::interval GROUP BY stage",
        FINAL,
        older_than,
    )
    return {r["stage"]: r["n"] for r in rows}


async def find_by_number(conn: asyncpg.Connection, external_order_no: str, shop_id: str | None) -> list[dict[str, Any]]:
    """Orders with this shop order number (one per shop and channel)."""
    rows = await conn.fetch(
        "SELECT order_id, shop_id, channel, external_order_no FROM orders "
        "WHERE external_order_no = $1 AND ($2::text IS NULL OR shop_id = $2) ORDER BY created_at",
        external_order_no,
        shop_id,
    )
    return [dict(r) for r in rows]


async def order_exists(conn: asyncpg.Connection, order_id: UUID) -> bool:
    """Whether the order is known."""
    return bool(await conn.fetchval("SELECT true FROM orders WHERE order_id = $1", order_id))
