"""SQL of the shop's shipping fee table."""

import json

import asyncpg

from .domain.fees import FeeTable


async def fee_table(conn: asyncpg.Connection, shop_id: str) -> FeeTable | None:
    """The shop's shipping fee table, or None when the shop has set none."""
    raw = await conn.fetchval("SELECT fee_table FROM shop_shipping_fees WHERE shop_id = $1", shop_id)
    return FeeTable.from_json(json.loads(raw)) if raw is not None else None


async def save_fee_table(conn: asyncpg.Connection, shop_id: str, table: FeeTable, updated_by: str) -> None:
    """Replaces the shop's shipping fee table."""
    await conn.execute(
        """
        INSERT INTO shop_shipping_fees (shop_id, fee_table, updated_by) VALUES ($1, $2::jsonb, $3)
        ON CONFLICT (shop_id) DO UPDATE SET fee_table = $2::jsonb, updated_by = $3, updated_at = now()
        """,
        shop_id,
        json.dumps(table.as_json(), ensure_ascii=False),
        updated_by,
    )
