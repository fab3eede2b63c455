"""SQL of the points service: the ledger and each order's points."""

from uuid import UUID

import asyncpg


async def lock_order_points(conn: asyncpg.Connection, order_id: UUID) -> asyncpg.Record | None:
    """The order's points row, locked."""
    return await conn.fetchrow("SELECT * FROM order_points WHERE order_id = $1 FOR UPDATE", order_id)


async def save_accrual(conn: asyncpg.Connection, order_id: UUID, shop_id: str, customer_id: str, points: int) -> None:
    """Records the order's provisional points (or fills them in where a confirmation came first)."""
    await conn.execute(
        """
        INSERT INTO order_points (order_id, shop_id, customer_id, points, status)
        VALUES ($1, $2, $3, $4, 'provisional')
        ON CONFLICT (order_id) DO UPDATE SET customer_id = $3, points = $4, status = 'provisional'
        """,
        order_id,
        shop_id,
        customer_id,
        points,
    )


async def request_confirmation(conn: asyncpg.Connection, order_id: UUID, shop_id: str, cause_id: UUID) -> None:
    """Notes that payment is settled before the accrual is known."""
    await conn.execute(
        """
        INSERT INTO order_points (order_id, shop_id, status, confirm_requested, confirm_cause_id)
        VALUES ($1, $2, 'awaiting_accrual', true, $3)
        ON CONFLICT (order_id) DO UPDATE SET confirm_requested = true, confirm_cause_id = $3
        """,
        order_id,
        shop_id,
        cause_id,
    )


async def mark_confirmed(conn: asyncpg.Connection, order_id: UUID) -> None:
    """The order's points are confirmed."""
    await conn.execute("UPDATE order_points SET status = 'confirmed' WHERE order_id = $1", order_id)


async def append_entry(
    conn: asyncpg.Connection, *, shop_id: str, customer_id: str, order_id: UUID, kind: str, points: int, cause_id: UUID
) -> None:
    """Appends a ledger entry; the same cause and kind is booked once."""
    await conn.execute(
        """
        INSERT INTO ledger (shop_id, customer_id, order_id, kind, points, cause_id)
        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (cause_id, kind) DO NOTHING
        """,
        shop_id,
        customer_id,
        order_id,
        kind,
        points,
        cause_id,
    )
