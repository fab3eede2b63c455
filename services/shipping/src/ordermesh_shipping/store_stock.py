"""SQL of the shipping service about stock: levels, allocations and orders waiting for stock."""

from datetime import datetime
from uuid import UUID

import asyncpg

from .store import DEFAULT_WAREHOUSE


async def lock_stock_rows(conn: asyncpg.Connection, skus: list[str]) -> dict[tuple[str, str], int]:
    """Locks every stock row of these skus (sku, warehouse order: no deadlock) and returns their allocated units."""
    rows = await conn.fetch(
        "SELECT sku, warehouse, allocated FROM stock WHERE sku = ANY($1::text[]) ORDER BY sku, warehouse FOR UPDATE",
        skus,
    )
    return {(row["sku"], row["warehouse"]): row["allocated"] for row in rows}


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


def _set_aside(when: str = "true") -> str:
    """Sets units ($3 skus, $4 units) aside for order $1 in warehouse $2 if `when` holds: its allocations and the
    stock's allocated."""
    return f"""
    set_aside AS (
        INSERT INTO allocations (order_id, sku, warehouse, quantity)
        SELECT $1, taken.sku, $2, taken.units FROM unnest($3::text[], $4::bigint[]) AS taken (sku, units) WHERE {when}
        ON CONFLICT (order_id, sku, warehouse) DO UPDATE SET quantity = allocations.quantity + EXCLUDED.quantity
    ), counted AS (
        UPDATE stock SET allocated = stock.allocated + taken.units
        FROM unnest($3::text[], $4::bigint[]) AS taken (sku, units)
        WHERE stock.sku = taken.sku AND stock.sku = ANY($3::text[]) AND stock.warehouse = $2 AND {when}
    )"""


async def allocate(conn: asyncpg.Connection, order_id: UUID, quantities: dict[str, int]) -> None:
    """Sets (more) stock aside for the order, in one statement."""
    skus = sorted(quantities)
    await conn.execute(
        f"WITH {_set_aside()} SELECT 1", order_id, DEFAULT_WAREHOUSE, skus, [quantities[sku] for sku in skus]
    )


async def lock_demand_and_stock(conn: asyncpg.Connection, order_id: UUID) -> list[asyncpg.Record]:
    """Per sku of the order: its units (sku, demand), the shop, and the units available in the default warehouse
    (None without a stock row), the stock rows locked (in sku order, so no deadlock); then the order's allocation
    request is locked, and every row carries its `requested_at` (None if the order never reached allocation). One
    statement; the request's lock is taken after every stock row's, as cancelling and editing take them."""
    return await conn.fetch(
        """
        WITH demand AS (
            SELECT sku, sum(quantity)::bigint AS units, min(shop_id) AS shop_id
            FROM order_lines WHERE order_id = $1 GROUP BY sku
        ), available AS MATERIALIZED (
            SELECT sku, on_hand - allocated AS units FROM stock
            WHERE warehouse = $2 AND sku IN (SELECT sku FROM demand) ORDER BY sku FOR UPDATE
        ), request AS MATERIALIZED (
            -- the count is a one-time filter, run before the request is read: every stock row is locked first
            SELECT requested_at FROM allocation_requests
            WHERE order_id = $1 AND (SELECT count(*) FROM available) >= 0 FOR UPDATE
        )
        SELECT demand.sku, demand.units AS demand, demand.shop_id, available.units AS available,
               (SELECT requested_at FROM request) AS requested_at
        FROM demand LEFT JOIN available USING (sku) ORDER BY demand.sku
        """,
        order_id,
        DEFAULT_WAREHOUSE,
    )


async def allocation_of(conn: asyncpg.Connection, order_id: UUID) -> tuple[bool, dict[str, int]]:
    """Whether staff cancelled the order, and the units set aside for it per sku (default warehouse)."""
    row = await conn.fetchrow(
        """
        SELECT EXISTS (SELECT 1 FROM cancelled_orders WHERE order_id = $1) AS cancelled,
               ARRAY(SELECT sku FROM allocations WHERE order_id = $1 AND warehouse = $2 ORDER BY sku) AS skus,
               ARRAY(SELECT quantity FROM allocations WHERE order_id = $1 AND warehouse = $2 ORDER BY sku) AS units
        """,
        order_id,
        DEFAULT_WAREHOUSE,
    )
    return row["cancelled"], dict(zip(row["skus"], row["units"]))


async def save_allocation(
    conn: asyncpg.Connection,
    order_id: UUID,
    quantities: dict[str, int],
    *,
    shop_id: str,
    requested_at: datetime,
    coverage: str,
    correlation_id: UUID,
) -> bool:
    """Sets (more) stock aside for the order and records how much of it is allocated (orders not full wait for
    stock), in one statement, unless staff cancelled the order (read by this statement: after the caller's locks);
    returns whether it did."""
    skus = sorted(quantities)
    return await conn.fetchval(
        f"""
        WITH go AS (
            SELECT NOT EXISTS (SELECT FROM cancelled_orders WHERE order_id = $1) AS go
        ), {_set_aside("(SELECT go FROM go)")}, requested AS (
            INSERT INTO allocation_requests (order_id, shop_id, requested_at, coverage, correlation_id)
            SELECT $1, $5, $6, $7, $8 WHERE (SELECT go FROM go)
            ON CONFLICT (order_id) DO UPDATE SET coverage = EXCLUDED.coverage
        )
        SELECT go FROM go
        """,
        order_id, DEFAULT_WAREHOUSE, skus, [quantities[sku] for sku in skus], shop_id, requested_at, coverage, correlation_id,
    )


async def allocated_to(conn: asyncpg.Connection, order_id: UUID) -> dict[str, int]:
    """Units set aside for the order, per sku (default warehouse)."""
    rows = await conn.fetch(
        "SELECT sku, quantity FROM allocations WHERE order_id = $1 AND warehouse = $2", order_id, DEFAULT_WAREHOUSE
    )
    return {row["sku"]: row["quantity"] for row in rows}


async def lock_allocation_request(conn: asyncpg.Connection, order_id: UUID) -> asyncpg.Record | None:
    """The order's allocation request, locked, if it reached allocation before."""
    return await conn.fetchrow("SELECT * FROM allocation_requests WHERE order_id = $1 FOR UPDATE", order_id)


async def save_allocation_request(
    conn: asyncpg.Connection, order_id: UUID, shop_id: str, requested_at: datetime, coverage: str, correlation_id: UUID
) -> None:
    """Records how much of the order is allocated; orders not full wait for stock."""
    await conn.execute(
        """
        INSERT INTO allocation_requests (order_id, shop_id, requested_at, coverage, correlation_id)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (order_id) DO UPDATE SET coverage = EXCLUDED.coverage
        """,
        order_id,
        shop_id,
        requested_at,
        coverage,
        correlation_id,
    )


async def waiting_orders(conn: asyncpg.Connection, skus: list[str]) -> list[asyncpg.Record]:
    """Orders not fully allocated that need any of these skus, oldest first."""
    return await conn.fetch(
        """
        SELECT r.* FROM allocation_requests r
        WHERE r.coverage <> 'full'
          AND NOT EXISTS (SELECT 1 FROM cancelled_orders c WHERE c.order_id = r.order_id)
          AND EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = r.order_id AND l.sku = ANY($1::text[]))
        ORDER BY r.requested_at, r.order_id
        """,
        skus,
    )


async def demand_skus_of_waiting(conn: asyncpg.Connection, skus: list[str]) -> list[str]:
    """Every sku that waiting orders needing any of these skus need (to lock them all up front, in order)."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT l.sku FROM allocation_requests r JOIN order_lines l ON l.order_id = r.order_id
        WHERE r.coverage <> 'full'
          AND NOT EXISTS (SELECT 1 FROM cancelled_orders c WHERE c.order_id = r.order_id)
          AND EXISTS (SELECT 1 FROM order_lines x WHERE x.order_id = r.order_id AND x.sku = ANY($1::text[]))
        """,
        skus,
    )
    return [row["sku"] for row in rows]


async def set_stock(conn: asyncpg.Connection, levels: list[tuple[str, str, int]]) -> None:
    """Sets on-hand stock (sku, warehouse, units)."""
    await conn.executemany(
        """
        INSERT INTO stock (sku, warehouse, on_hand) VALUES ($1, $2, $3)
        ON CONFLICT (sku, warehouse) DO UPDATE SET on_hand = EXCLUDED.on_hand
        """,
        levels,
    )


async def restock(conn: asyncpg.Connection, units: dict[str, int]) -> None:
    """Returned units go back on hand in the default warehouse (callers lock the stock rows first)."""
    await conn.executemany(
        """
        INSERT INTO stock (sku, warehouse, on_hand) VALUES ($1, $2, $3)
        ON CONFLICT (sku, warehouse) DO UPDATE SET on_hand = stock.on_hand + EXCLUDED.on_hand
        """,
        [(sku, DEFAULT_WAREHOUSE, qty) for sku, qty in sorted(units.items())],
    )


async def stock_levels(conn: asyncpg.Connection, sku: str | None) -> list[asyncpg.Record]:
    """Stock per sku and warehouse: on hand, allocated, available (one sku, or all)."""
    return await conn.fetch(
        """
        SELECT s.sku, s.warehouse, s.on_hand, s.allocated, s.on_hand - s.allocated AS available,
               coalesce(a.cool_type, 'normal') AS cool_type
        FROM stock s LEFT JOIN sku_attributes a ON a.sku = s.sku
        WHERE $1::text IS NULL OR s.sku = $1 ORDER BY s.sku, s.warehouse
        """,
        sku,
    )


async def allocations(conn: asyncpg.Connection, order_id: UUID | None, sku: str | None, limit: int = 500) -> list[asyncpg.Record]:
    """Units set aside per order and sku (shipped included, released ones apart) with the order's coverage, oldest
    request first; for one order, one sku, or both."""
    return await conn.fetch(
        """
        SELECT a.order_id, a.sku, a.warehouse, a.quantity AS allocated, a.released, r.coverage, r.requested_at
        FROM allocations a LEFT JOIN allocation_requests r ON r.order_id = a.order_id
        WHERE ($1::uuid IS NULL OR a.order_id = $1) AND ($2::text IS NULL OR a.sku = $2)
        ORDER BY r.requested_at, a.order_id, a.sku LIMIT $3
        """,
        order_id,
        sku,
        limit,
    )


async def release_allocation(conn: asyncpg.Connection, order_id: UUID, quantities: dict[str, int]) -> None:
    """Gives units set aside for the order back to available stock (callers lock the stock rows first)."""
    rows = [(order_id, sku, DEFAULT_WAREHOUSE, qty) for sku, qty in sorted(quantities.items())]
    await conn.executemany(
        """
        UPDATE allocations SET quantity = quantity - $4, released = released + $4
        WHERE order_id = $1 AND sku = $2 AND warehouse = $3
        """,
        rows,
    )
    await conn.executemany(
        "UPDATE stock SET allocated = allocated - $3 WHERE sku = $1 AND warehouse = $2",
        [(sku, warehouse, qty) for _, sku, warehouse, qty in rows],
    )


async def close_allocation_request(conn: asyncpg.Connection, order_id: UUID) -> None:
    """The order no longer waits for stock."""
    await conn.execute("UPDATE allocation_requests SET coverage = 'cancelled' WHERE order_id = $1", order_id)

