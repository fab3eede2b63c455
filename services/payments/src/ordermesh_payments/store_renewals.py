"""SQL of the periodic checks' own decisions: authorizations to renew automatically."""

import asyncpg


async def renewable_authorizations(conn: asyncpg.Connection | asyncpg.Pool, limit: int = 500) -> list[asyncpg.Record]:
    """Uncaptured card authorizations of shops that renew expiring ones (not flagged for staff), oldest first, with the
    shop's `authorization_valid_days`."""
    return await conn.fetch(
        """
        SELECT p.*, s.authorization_valid_days FROM payments p JOIN payment_settings s ON s.shop_id = p.shop_id
        WHERE s.reauthorize_expiring AND p.status = 'authorized' AND p.cancelled_at IS NULL
            AND p.authorization_id IS NOT NULL AND NOT p.reauthorization_flagged
        ORDER BY p.authorized_at LIMIT $1
        """,
        limit,
    )


async def shops_with_authorizations(conn: asyncpg.Connection) -> list[str]:
    """Shops that have card authorizations waiting for capture."""
    return await conn.fetchval("SELECT coalesce(array_agg(DISTINCT shop_id), '{}') FROM payments WHERE status = 'authorized'")
