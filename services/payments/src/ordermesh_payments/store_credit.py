"""SQL of deferred payment in the payments service: credit checks asked of the provider and their decisions."""

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from .domain.credit import CreditCheckFacts


async def record_check(
    conn: asyncpg.Connection, *, check_id: str, order_id: UUID, shop_id: str, amount: int, currency: str, status: str,
    reason: str | None, cause_id: UUID, correlation_id: UUID,
) -> bool:
    """Records a credit check the provider answered; False if it was recorded before (a redelivery)."""
    return bool(
        await conn.fetchval(
            """
            INSERT INTO credit_checks (check_id, order_id, shop_id, amount, currency, status, reason, cause_id, correlation_id,
                decided_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $6 <> 'pending' THEN now() END)
            ON CONFLICT (check_id) DO NOTHING RETURNING true
            """,
            check_id, order_id, shop_id, amount, currency, status, reason, cause_id, correlation_id,
        )
    )


async def set_current_check(conn: asyncpg.Connection, order_id: UUID, check_id: str | None, status: str, amount: int) -> None:
    """Makes `check_id` the payment's credit check, with the payment's status and amount that follow from it."""
    await conn.execute(
        """
        UPDATE payments SET credit_check_id = coalesce($2, credit_check_id), status = $3, amount = $4, updated_at = now()
        WHERE order_id = $1
        """,
        order_id, check_id, status, amount,
    )


async def pending_checks(conn: asyncpg.Pool | asyncpg.Connection, limit: int = 100) -> list[asyncpg.Record]:
    """Credit checks still pending with the provider, least recently polled first, with their order and the trace
    context of its payment."""
    return await conn.fetch(
        """
        SELECT c.check_id, c.order_id, p.traceparent FROM credit_checks c LEFT JOIN payments p ON p.order_id = c.order_id
        WHERE c.status = 'pending' ORDER BY c.polled_at NULLS FIRST, c.requested_at LIMIT $1
        """,
        limit,
    )


async def lock_check(conn: asyncpg.Connection, check_id: str) -> asyncpg.Record | None:
    """A credit check, locked for this transaction."""
    return await conn.fetchrow("SELECT * FROM credit_checks WHERE check_id = $1 FOR UPDATE", check_id)


async def decide_check(conn: asyncpg.Connection, check_id: str, status: str, reason: str | None) -> None:
    """Records the provider's decision about a pending check."""
    await conn.execute(
        """
        UPDATE credit_checks SET status = $2, reason = $3, decided_at = now(), polled_at = now()
        WHERE check_id = $1 AND status = 'pending'
        """,
        check_id, status, reason,
    )


async def mark_polled(conn: asyncpg.Connection | asyncpg.Pool, check_id: str) -> None:
    """Remembers that a check was polled (so the others get their turn)."""
    await conn.execute("UPDATE credit_checks SET polled_at = now() WHERE check_id = $1", check_id)


async def set_check_amount(conn: asyncpg.Connection, check_id: str, amount: int) -> None:
    """The provider lowered the checked amount."""
    await conn.execute("UPDATE credit_checks SET amount = $2 WHERE check_id = $1", check_id, amount)


async def set_check_status(conn: asyncpg.Connection, check_id: str, status: str) -> None:
    """A check replaced or cancelled at the provider."""
    await conn.execute("UPDATE credit_checks SET status = $2 WHERE check_id = $1", check_id, status)


async def checks_of(conn: asyncpg.Pool | asyncpg.Connection, order_id: UUID) -> list[dict]:
    """The order's credit checks for staff, oldest first."""
    rows = await conn.fetch(
        """
        SELECT check_id, amount, currency, status, reason, requested_at, decided_at
        FROM credit_checks WHERE order_id = $1 ORDER BY requested_at
        """,
        order_id,
    )
    return [dict(row) for row in rows]


@dataclass(frozen=True)
class CreditCheckBasis:
    """A credit check's facts and the version (xmin) of the payment row they come from (None: no payment yet), which
    the intent must find unchanged."""

    facts: CreditCheckFacts
    version: str | None


async def credit_check_facts(conn: asyncpg.Connection | asyncpg.Pool, message_id: UUID, order_id: UUID) -> CreditCheckBasis:
    """Whether the message was processed, the order cancelled, its payment and its credit checks so far, read in one
    statement (nothing locked: see `store.save_opening_intent`)."""
    row = await conn.fetchrow(
        """
        SELECT EXISTS (SELECT FROM inbox WHERE message_id = $1) AS processed,
               EXISTS (SELECT FROM cancellations WHERE order_id = $2) OR p.cancelled_at IS NOT NULL AS cancelled,
               p.order_id IS NOT NULL AS payment_exists, p.version,
               ARRAY(SELECT idempotency_key FROM gateway_calls WHERE order_id = $2 AND operation = 'credit_check'
                     ORDER BY requested_at) AS check_keys
        FROM (SELECT) AS one
        LEFT JOIN LATERAL (SELECT order_id, cancelled_at, xmin::text AS version FROM payments WHERE order_id = $2) AS p ON true
        """,
        message_id,
        order_id,
    )
    facts = CreditCheckFacts(
        processed=row["processed"], cancelled=row["cancelled"], payment_exists=row["payment_exists"],
        check_keys=tuple(row["check_keys"]),
    )
    return CreditCheckBasis(facts, row["version"])