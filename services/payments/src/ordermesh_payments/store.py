"""SQL of the payments service: payment state per order and the ledger of gateway calls."""

from uuid import UUID

import asyncpg


async def create_payment(
    conn: asyncpg.Connection, *, order_id: UUID, shop_id: str, method: str, currency: str, amount: int, status: str
) -> None:
    """Creates the order's payment row (kept as it is if it exists)."""
    await conn.execute(
        """
        INSERT INTO payments (order_id, shop_id, method, currency, amount, status)
        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (order_id) DO NOTHING
        """,
        order_id,
        shop_id,
        method,
        currency,
        amount,
        status,
    )


async def record_intent(conn: asyncpg.Connection, *, key: str, order_id: UUID, operation: str, amount: int) -> None:
    """Writes a gateway call before it is made (kept as it is if it exists)."""
    await conn.execute(
        """
        INSERT INTO gateway_calls (idempotency_key, order_id, operation, amount)
        VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING
        """,
        key,
        order_id,
        operation,
        amount,
    )


async def record_result(
    conn: asyncpg.Connection, *, key: str, approved: bool, reference: str | None, reason: str | None
) -> None:
    """Writes the gateway's answer to a call."""
    await conn.execute(
        """
        UPDATE gateway_calls SET status = $2, reference = $3, reason = $4, completed_at = now()
        WHERE idempotency_key = $1
        """,
        key,
        "succeeded" if approved else "failed",
        reference,
        reason,
    )


async def lock_payment(conn: asyncpg.Connection, order_id: UUID) -> asyncpg.Record | None:
    """The order's payment row, locked for this transaction."""
    return await conn.fetchrow("SELECT * FROM payments WHERE order_id = $1 FOR UPDATE", order_id)


async def set_authorized(conn: asyncpg.Connection, order_id: UUID, authorization_id: str, amount: int) -> None:
    """Marks the payment authorized."""
    await conn.execute(
        """
        UPDATE payments SET status = 'authorized', authorization_id = $2, authorized_amount = $3, updated_at = now()
        WHERE order_id = $1
        """,
        order_id,
        authorization_id,
        amount,
    )


async def set_status(conn: asyncpg.Connection, order_id: UUID, status: str) -> None:
    """Sets the payment's status."""
    await conn.execute("UPDATE payments SET status = $2, updated_at = now() WHERE order_id = $1", order_id, status)


async def set_captured(conn: asyncpg.Connection, order_id: UUID, amount: int) -> None:
    """Marks the payment captured."""
    await conn.execute(
        "UPDATE payments SET status = 'captured', captured_amount = $2, updated_at = now() WHERE order_id = $1",
        order_id,
        amount,
    )
