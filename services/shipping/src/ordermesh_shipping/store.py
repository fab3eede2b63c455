"""SQL of the shipping service: stock, order lines, allocations and shipments."""

from datetime import datetime
from uuid import UUID

import asyncpg

DEFAULT_WAREHOUSE = "main"


async def save_order_lines(conn: asyncpg.Connection, rows: list[tuple[UUID, str, int, str, int, str]]) -> None:
    """Stores an order's lines (order, shop, delivery, sku, quantity, carrier); a repeat changes nothing."""
    await conn.executemany(
        """
        INSERT INTO order_lines (order_id, shop_id, delivery_index, sku, quantity, carrier)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (order_id, delivery_index, sku) DO UPDATE SET quantity = order_lines.quantity
        """,
        rows,
    )


async def order_lines(conn: asyncpg.Connection, order_id: UUID) -> list[asyncpg.Record]:
    """The order's lines, by delivery group."""
    return await conn.fetch(
        "SELECT * FROM order_lines WHERE order_id = $1 ORDER BY delivery_index, sku", order_id
    )


async def lock_available_stock(conn: asyncpg.Connection, skus: list[str]) -> dict[str, int]:
    """Available units per sku in the default warehouse, rows locked (in sku order, so no deadlock)."""
    rows = await conn.fetch(
        """
        SELECT sku, on_hand - allocated AS available FROM stock
        WHERE warehouse = $2 AND sku = ANY($1::text[]) ORDER BY sku FOR UPDATE
        """,
        skus,
        DEFAULT_WAREHOUSE,
    )
    return {row["sku"]: row["available"] for row in rows}


async def allocate(conn: asyncpg.Connection, order_id: UUID, quantities: dict[str, int]) -> None:
    """Sets stock aside for the order."""
    rows = [(order_id, sku, DEFAULT_WAREHOUSE, qty) for sku, qty in quantities.items()]
    await conn.executemany(
        "INSERT INTO allocations (order_id, sku, warehouse, quantity) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        rows,
    )
    await conn.executemany(
        "UPDATE stock SET allocated = allocated + $3 WHERE sku = $1 AND warehouse = $2",
        [(sku, warehouse, qty) for _, sku, warehouse, qty in rows],
    )


async def has_allocation(conn: asyncpg.Connection, order_id: UUID) -> bool:
    """Whether stock was already set aside for the order."""
    return bool(await conn.fetchval("SELECT true FROM allocations WHERE order_id = $1 LIMIT 1", order_id))


async def set_stock(conn: asyncpg.Connection, levels: list[tuple[str, str, int]]) -> None:
    """Sets on-hand stock (sku, warehouse, units)."""
    await conn.executemany(
        """
        INSERT INTO stock (sku, warehouse, on_hand) VALUES ($1, $2, $3)
        ON CONFLICT (sku, warehouse) DO UPDATE SET on_hand = EXCLUDED.on_hand
        """,
        levels,
    )


async def create_shipment(
    conn: asyncpg.Connection, shipment_id: UUID, order_id: UUID, delivery_index: int, carrier: str
) -> None:
    """Records the intent to request a shipment (kept as it is if it exists)."""
    await conn.execute(
        """
        INSERT INTO shipments (shipment_id, order_id, delivery_index, status, carrier)
        VALUES ($1, $2, $3, 'requesting', $4) ON CONFLICT DO NOTHING
        """,
        shipment_id,
        order_id,
        delivery_index,
        carrier,
    )


async def mark_requested(conn: asyncpg.Connection, shipment_id: UUID, warehouse_request_id: str) -> None:
    """The warehouse took the request."""
    await conn.execute(
        """
        UPDATE shipments SET status = 'requested', warehouse_request_id = $2
        WHERE shipment_id = $1 AND status = 'requesting'
        """,
        shipment_id,
        warehouse_request_id,
    )


async def lock_shipment(conn: asyncpg.Connection, shipment_id: UUID) -> asyncpg.Record | None:
    """A shipment, locked for this transaction."""
    return await conn.fetchrow("SELECT * FROM shipments WHERE shipment_id = $1 FOR UPDATE", shipment_id)


async def mark_shipped(
    conn: asyncpg.Connection, shipment_id: UUID, carrier: str, tracking_number: str, shipped_at: datetime
) -> None:
    """The shipment left the warehouse."""
    await conn.execute(
        """
        UPDATE shipments SET status = 'shipped', carrier = $2, tracking_number = $3, shipped_at = $4
        WHERE shipment_id = $1
        """,
        shipment_id,
        carrier,
        tracking_number,
        shipped_at,
    )


async def consume_stock(conn: asyncpg.Connection, quantities: dict[str, int]) -> None:
    """Shipped units leave stock and their allocation."""
    await conn.executemany(
        "UPDATE stock SET on_hand = on_hand - $2, allocated = allocated - $2 WHERE sku = $1 AND warehouse = $3",
        [(sku, qty, DEFAULT_WAREHOUSE) for sku, qty in sorted(quantities.items())],
    )


async def unshipped_count(conn: asyncpg.Connection, order_id: UUID) -> int:
    """Shipments of the order not yet shipped."""
    return await conn.fetchval(
        "SELECT count(*) FROM shipments WHERE order_id = $1 AND status <> 'shipped'", order_id
    )
