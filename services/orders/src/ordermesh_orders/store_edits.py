"""SQL of order edits: what shipped and what was paid, as edits check against them (both are written with the order's
save, `store.save_states`), and the edits themselves."""

import json
from uuid import UUID

import asyncpg
from ordermesh_contracts import DeliveryGroup, OrderAccepted, OrderEdited

from .domain.edits import Shipped


async def shipped_units(conn: asyncpg.Connection, order_id: UUID) -> Shipped:
    """Units shipped so far per (delivery index, sku)."""
    rows = await conn.fetch(
        "SELECT delivery_index, sku, sum(quantity) AS quantity FROM order_shipped_units WHERE order_id = $1 "
        "GROUP BY delivery_index, sku",
        order_id,
    )
    return {(row["delivery_index"], row["sku"]): row["quantity"] for row in rows}


async def edit_basis(conn: asyncpg.Connection, order_id: UUID) -> tuple[OrderAccepted, int, int]:
    """The order as last accepted or edited, what the customer has paid, and the number of edits so far."""
    row = await conn.fetchrow(
        "SELECT snapshot, paid_captured + paid_received - paid_refunded AS paid, edit_count FROM orders WHERE order_id = $1",
        order_id,
    )
    return OrderAccepted.model_validate_json(row["snapshot"]), row["paid"], row["edit_count"]


async def save_edit(
    conn: asyncpg.Connection,
    edited: OrderEdited,
    snapshot: OrderAccepted,
    command_id: UUID,
    *,
    previous: list[DeliveryGroup],
) -> None:
    """Commits an edit: the order's lines and charges become the edited ones, and the edit is kept with its diff and
    the delivery groups as they were (to reverse it if the warehouse can't follow)."""
    await conn.execute(
        "UPDATE orders SET snapshot = $2::jsonb, total = $3, edit_count = $4, updated_at = now() WHERE order_id = $1",
        edited.order_id,
        snapshot.model_dump_json(),
        edited.charges.total,
        edited.edit_no,
    )
    await conn.execute(
        """
        INSERT INTO order_edits (order_id, edit_no, command_id, edited_by, reason, changes, previous_total, total, paid,
                                 balance, adjust_stock, previous_deliveries)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12::jsonb)
        """,
        edited.order_id,
        edited.edit_no,
        command_id,
        edited.edited_by,
        edited.reason,
        json.dumps([change.model_dump(mode="json") for change in edited.changes]),
        edited.previous_charges.total,
        edited.charges.total,
        edited.paid,
        edited.balance,
        edited.adjust_stock,
        json.dumps([group.model_dump(mode="json") for group in previous]),
    )


async def deliveries_before_edit(conn: asyncpg.Connection, order_id: UUID, edit_no: int) -> list[DeliveryGroup] | None:
    """The order's delivery groups as they were before an edit (None for an unknown edit)."""
    raw = await conn.fetchval(
        "SELECT previous_deliveries FROM order_edits WHERE order_id = $1 AND edit_no = $2", order_id, edit_no
    )
    return [DeliveryGroup.model_validate(group) for group in json.loads(raw)] if raw else None


async def edits_of(conn: asyncpg.Connection, order_id: UUID) -> list[dict]:
    """Every edit of the order, oldest first, for staff."""
    rows = await conn.fetch(
        "SELECT edit_no, edited_at, edited_by, reason, changes, previous_total, total, paid, balance, adjust_stock "
        "FROM order_edits WHERE order_id = $1 ORDER BY edit_no",
        order_id,
    )
    return [{**dict(row), "changes": json.loads(row["changes"])} for row in rows]
