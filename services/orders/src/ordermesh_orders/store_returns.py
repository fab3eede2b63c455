"""SQL of returns after shipping: what came back so far, and each return."""

import json
from uuid import UUID

import asyncpg
from ordermesh_contracts import OrderAccepted, OrderReturned

from .domain.returns import Returned


async def returned_units(conn: asyncpg.Connection, order_id: UUID) -> tuple[Returned, int]:
    """Units returned so far per (delivery index, sku), and how many returns the order had."""
    rows = await conn.fetch("SELECT lines FROM order_returns WHERE order_id = $1", order_id)
    units: Returned = {}
    for row in rows:
        for line in json.loads(row["lines"]):
            key = (line["delivery_index"], line["sku"])
            units[key] = units.get(key, 0) + line["quantity"]
    return units, len(rows)


async def save_return(conn: asyncpg.Connection, returned: OrderReturned, snapshot: OrderAccepted, command_id: UUID) -> None:
    """Commits a return: the order's lines and total become the returned ones (it counts in the edit sequence), and
    the return is kept."""
    await conn.execute(
        "UPDATE orders SET snapshot = $2::jsonb, total = $3, edit_count = $4, updated_at = now() WHERE order_id = $1",
        returned.order_id, snapshot.model_dump_json(), returned.charges.total, returned.edit_no,
    )
    await conn.execute(
        """
        INSERT INTO order_returns (order_id, return_no, edit_no, command_id, returned_by, reason, lines, amount, restock,
                                   previous_total, total)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11)
        """,
        returned.order_id, returned.return_no, returned.edit_no, command_id, returned.returned_by, returned.reason,
        json.dumps([line.model_dump(mode="json") for line in returned.lines]), returned.amount, returned.restock,
        returned.previous_charges.total, returned.charges.total,
    )


async def returns_of(conn: asyncpg.Connection, order_id: UUID) -> list[dict]:
    """Every return of the order, oldest first, for staff."""
    rows = await conn.fetch(
        "SELECT return_no, edit_no, returned_at, returned_by, reason, lines, amount, restock, previous_total, total "
        "FROM order_returns WHERE order_id = $1 ORDER BY return_no",
        order_id,
    )
    return [{**dict(row), "lines": json.loads(row["lines"])} for row in rows]
