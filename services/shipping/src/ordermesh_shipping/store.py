"""SQL of the shipping service: stock, order lines, allocations and shipments."""

from datetime import datetime
from uuid import UUID

import asyncpg

from .domain.delivery_dates import ShopCalendar

DEFAULT_WAREHOUSE = "main"


async def save_order_lines(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    """Stores an order's lines (order, shop, delivery, sku, quantity, carrier, name, unit price); a repeat changes nothing."""
    await conn.executemany(
        """
        INSERT INTO order_lines (order_id, shop_id, delivery_index, sku, quantity, carrier, name, unit_price)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (order_id, delivery_index, sku) DO UPDATE SET quantity = order_lines.quantity
        """,
        rows,
    )


async def save_deliveries(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    """Stores each delivery group's address and wishes (order, index, shop, address json, date, slot, carrier,
    payment method, cash-on-delivery amount, currency, accepted at); a repeat changes nothing."""
    await conn.executemany(
        """
        INSERT INTO deliveries (order_id, delivery_index, shop_id, address, requested_date, time_slot, carrier,
                                payment_method, cod_amount, currency, accepted_at)
        VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11)
        ON CONFLICT DO NOTHING
        """,
        rows,
    )


async def shop(conn: asyncpg.Connection, shop_id: str) -> asyncpg.Record | None:
    """The shop's calendar and shipper settings, if it has any."""
    return await conn.fetchrow("SELECT * FROM shops WHERE shop_id = $1", shop_id)


async def shop_calendar(conn: asyncpg.Connection, shop_id: str) -> ShopCalendar:
    """The shop's shipping calendar (the defaults when it has none)."""
    row = await shop(conn, shop_id)
    if row is None:
        return ShopCalendar()
    return ShopCalendar(
        time_zone=row["time_zone"],
        cutoff=row["cutoff"],
        closed_weekdays=frozenset(row["closed_weekdays"]),
        closures=frozenset(row["closures"]),
        warehouse_prefecture=row["warehouse_prefecture"],
    )


async def cool_types(conn: asyncpg.Connection, skus: list[str]) -> dict[str, str]:
    """How each of these skus travels (skus never set are normal and absent here)."""
    rows = await conn.fetch("SELECT sku, cool_type FROM sku_attributes WHERE sku = ANY($1::text[])", skus)
    return {row["sku"]: row["cool_type"] for row in rows}


async def set_cool_types(conn: asyncpg.Connection, types: dict[str, str]) -> None:
    """Sets how skus travel."""
    await conn.executemany(
        "INSERT INTO sku_attributes (sku, cool_type) VALUES ($1, $2) ON CONFLICT (sku) DO UPDATE SET cool_type = EXCLUDED.cool_type",
        sorted(types.items()),
    )


async def known_skus(conn: asyncpg.Connection, skus: list[str]) -> set[str]:
    """Which of these skus shipping knows: it has stock for them or has seen them in an order."""
    rows = await conn.fetch(
        """
        SELECT sku FROM stock WHERE sku = ANY($1::text[])
        UNION SELECT sku FROM order_lines WHERE sku = ANY($1::text[])
        UNION SELECT sku FROM sku_attributes WHERE sku = ANY($1::text[])
        """,
        skus,
    )
    return {row["sku"] for row in rows}


async def lock_stock_rows(conn: asyncpg.Connection, skus: list[str]) -> dict[tuple[str, str], int]:
    """Locks every stock row of these skus (sku, warehouse order: no deadlock) and returns their allocated units."""
    rows = await conn.fetch(
        "SELECT sku, warehouse, allocated FROM stock WHERE sku = ANY($1::text[]) ORDER BY sku, warehouse FOR UPDATE",
        skus,
    )
    return {(row["sku"], row["warehouse"]): row["allocated"] for row in rows}


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
    """Sets (more) stock aside for the order."""
    rows = [(order_id, sku, DEFAULT_WAREHOUSE, qty) for sku, qty in quantities.items()]
    await conn.executemany(
        """
        INSERT INTO allocations (order_id, sku, warehouse, quantity) VALUES ($1, $2, $3, $4)
        ON CONFLICT (order_id, sku, warehouse) DO UPDATE SET quantity = allocations.quantity + EXCLUDED.quantity
        """,
        rows,
    )
    await conn.executemany(
        "UPDATE stock SET allocated = allocated + $3 WHERE sku = $1 AND warehouse = $2",
        [(sku, warehouse, qty) for _, sku, warehouse, qty in rows],
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


async def shipments_of_order(conn: asyncpg.Connection, order_id: UUID) -> list[asyncpg.Record]:
    """The order's shipments with their state and tracking."""
    return await conn.fetch(
        """
        SELECT shipment_id, order_id, delivery_index, status, carrier, tracking_number, warehouse_request_id,
               shipped_at, delivered_at, cash_collected, request_attempts, last_error, flagged,
               cancel_attempts, cancel_error
        FROM shipments WHERE order_id = $1 ORDER BY delivery_index
        """,
        order_id,
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
        "SELECT count(*) FROM shipments WHERE order_id = $1 AND status NOT IN ('shipped', 'delivered')", order_id
    )


async def record_request_failure(conn: asyncpg.Connection, shipment_id: UUID, error: str) -> int:
    """Counts one failed attempt to request the shipment; returns the attempts so far."""
    return await conn.fetchval(
        """
        UPDATE shipments SET request_attempts = request_attempts + 1, last_error = $2
        WHERE shipment_id = $1 RETURNING request_attempts
        """,
        shipment_id,
        error,
    )


async def mark_request_failed(conn: asyncpg.Connection, shipment_id: UUID) -> None:
    """The warehouse never took the request: staff must act."""
    await conn.execute(
        "UPDATE shipments SET status = 'request_failed' WHERE shipment_id = $1 AND status = 'requesting'", shipment_id
    )


async def shipment(conn: asyncpg.Connection, shipment_id: UUID) -> asyncpg.Record | None:
    """One shipment."""
    return await conn.fetchrow("SELECT * FROM shipments WHERE shipment_id = $1", shipment_id)


async def mark_delivered(conn: asyncpg.Connection, shipment_id: UUID, delivered_at: datetime, cash: int | None) -> None:
    """The carrier delivered the shipment (and collected `cash` on delivery)."""
    await conn.execute(
        "UPDATE shipments SET status = 'delivered', delivered_at = $2, cash_collected = $3 WHERE shipment_id = $1",
        shipment_id,
        delivered_at,
        cash,
    )


async def undelivered_count(conn: asyncpg.Connection, order_id: UUID) -> int:
    """Shipments of the order not yet delivered."""
    return await conn.fetchval(
        "SELECT count(*) FROM shipments WHERE order_id = $1 AND status <> 'delivered'", order_id
    )


async def shipments_for_labels(conn: asyncpg.Connection, shop_id: str, shipment_ids: list[UUID] | None) -> list[asyncpg.Record]:
    """Shipments of the shop with their delivery (address, wishes) and lines: the given ones, or every requested one."""
    return await conn.fetch(
        """
        SELECT s.shipment_id, s.order_id, s.delivery_index, s.status, s.carrier, d.address, d.requested_date,
               d.time_slot, d.cod_amount, d.accepted_at,
               (SELECT array_agg(l.name ORDER BY l.sku) FROM order_lines l
                 WHERE l.order_id = s.order_id AND l.delivery_index = s.delivery_index) AS names,
               (SELECT array_agg(l.sku ORDER BY l.sku) FROM order_lines l
                 WHERE l.order_id = s.order_id AND l.delivery_index = s.delivery_index) AS skus
        FROM shipments s JOIN deliveries d ON d.order_id = s.order_id AND d.delivery_index = s.delivery_index
        WHERE d.shop_id = $1
          AND (($2::uuid[] IS NULL AND s.status = 'requested' AND s.carrier LIKE 'yamato%')
               OR s.shipment_id = ANY($2::uuid[]))
        ORDER BY d.accepted_at, s.order_id, s.delivery_index
        """,
        shop_id,
        shipment_ids,
    )


async def shop_shipment_ids(conn: asyncpg.Connection, shop_id: str, shipment_ids: list[str]) -> set[str]:
    """Which of these ids are shipments of the shop."""
    rows = await conn.fetch(
        """
        SELECT s.shipment_id::text AS id FROM shipments s
        JOIN deliveries d ON d.order_id = s.order_id AND d.delivery_index = s.delivery_index
        WHERE d.shop_id = $1 AND s.shipment_id::text = ANY($2::text[])
        """,
        shop_id,
        shipment_ids,
    )
    return {row["id"] for row in rows}


async def tracking_owners(conn: asyncpg.Connection, numbers: list[str]) -> dict[str, str]:
    """Tracking number → the shipment that already has it."""
    rows = await conn.fetch(
        "SELECT tracking_number, shipment_id::text AS id FROM shipments WHERE tracking_number = ANY($1::text[])", numbers
    )
    return {row["tracking_number"]: row["id"] for row in rows}


async def flag_shipped_after_cancel(conn: asyncpg.Connection, shipment_id: UUID, quantities: dict[str, int]) -> None:
    """A cancelled shipment left anyway: keep it cancelled and flagged, and take the goods out of stock on hand."""
    await conn.execute(
        "UPDATE shipments SET status = 'cancelled', flagged = 'shipped_after_cancel' WHERE shipment_id = $1", shipment_id
    )
    await conn.executemany(
        "UPDATE stock SET on_hand = greatest(on_hand - $2, allocated) WHERE sku = $1 AND warehouse = $3",
        [(sku, qty, DEFAULT_WAREHOUSE) for sku, qty in sorted(quantities.items())],
    )


async def deliveries(conn: asyncpg.Connection, order_id: UUID) -> list[asyncpg.Record]:
    """The order's delivery groups."""
    return await conn.fetch("SELECT * FROM deliveries WHERE order_id = $1 ORDER BY delivery_index", order_id)


async def record_cancellation(
    conn: asyncpg.Connection, order_id: UUID, shop_id: str, restore_stock: bool, cancelled_at: datetime, event_id: UUID
) -> None:
    """Marks the order cancelled (the first cancellation counts): from now on nothing is allocated or requested for it."""
    await conn.execute(
        """
        INSERT INTO cancelled_orders (order_id, shop_id, restore_stock, cancelled_at, event_id)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING
        """,
        order_id,
        shop_id,
        restore_stock,
        cancelled_at,
        event_id,
    )


async def is_cancelled(conn: asyncpg.Connection, order_id: UUID) -> bool:
    """Whether staff cancelled the order."""
    return bool(await conn.fetchval("SELECT true FROM cancelled_orders WHERE order_id = $1", order_id))


async def lock_shipments_of_order(conn: asyncpg.Connection, order_id: UUID) -> list[asyncpg.Record]:
    """The order's shipments, locked (before any stock row, as shipping a shipment locks them), by delivery group."""
    return await conn.fetch(
        "SELECT * FROM shipments WHERE order_id = $1 ORDER BY delivery_index FOR UPDATE", order_id
    )


async def record_cancel_failure(conn: asyncpg.Connection, shipment_id: UUID, error: str) -> int:
    """Counts one failed attempt to cancel the shipment at the warehouse; returns the attempts so far."""
    return await conn.fetchval(
        """
        UPDATE shipments SET cancel_attempts = cancel_attempts + 1, cancel_error = $2
        WHERE shipment_id = $1 RETURNING cancel_attempts
        """,
        shipment_id,
        error,
    )


async def mark_cancelled(conn: asyncpg.Connection, shipment_ids: list[UUID]) -> None:
    """These shipments are cancelled (at the warehouse too, where it had them)."""
    await conn.execute(
        "UPDATE shipments SET status = 'cancelled', cancel_error = NULL WHERE shipment_id = ANY($1::uuid[])", shipment_ids
    )


async def mark_cancel_failed(conn: asyncpg.Connection, shipment_id: UUID, reason: str) -> None:
    """The shipment could not be cancelled: it keeps its state, with the reason for staff."""
    await conn.execute("UPDATE shipments SET cancel_error = $2 WHERE shipment_id = $1", shipment_id, reason)


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
