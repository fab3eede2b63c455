"""SQL of the shipping service about holds: failed checks that keep a delivery group from the warehouse, staff's
confirmations, and changes of a group's carrier or time slot."""

from uuid import UUID

import asyncpg

from .domain.holds import Failure


async def confirm_checks(conn: asyncpg.Connection, order_id: UUID, categories: list[str], confirmed_by: str) -> None:
    """Remembers staff's confirmation of these check categories for the order (the first one counts)."""
    await conn.executemany(
        "INSERT INTO confirmed_checks (order_id, category, confirmed_by) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        [(order_id, category, confirmed_by) for category in categories],
    )


async def set_holds(conn: asyncpg.Connection, order_id: UUID, holds: dict[int, list[Failure]]) -> None:
    """Records what holds each checked delivery group now (nothing: it may go)."""
    await conn.executemany(
        "UPDATE deliveries SET held_checks = $3, hold_reasons = $4 WHERE order_id = $1 AND delivery_index = $2",
        [(order_id, index, [check for check, _ in failures], [reason for _, reason in failures]) for index, failures in holds.items()],
    )


async def held_deliveries(conn: asyncpg.Connection, order_id: UUID) -> dict[int, list[Failure]]:
    """The order's delivery groups held back by a failed check, with the failures."""
    rows = await conn.fetch(
        "SELECT delivery_index, held_checks, hold_reasons FROM deliveries WHERE order_id = $1 AND held_checks <> '{}'",
        order_id,
    )
    return {row["delivery_index"]: list(zip(row["held_checks"], row["hold_reasons"])) for row in rows}


async def lock_delivery(conn: asyncpg.Connection, order_id: UUID, delivery_index: int) -> asyncpg.Record | None:
    """One delivery group, locked."""
    return await conn.fetchrow(
        "SELECT * FROM deliveries WHERE order_id = $1 AND delivery_index = $2 FOR UPDATE", order_id, delivery_index
    )


async def change_method(
    conn: asyncpg.Connection, order_id: UUID, delivery_index: int, carrier: str, time_slot: str | None
) -> None:
    """Sets a delivery group's carrier and time slot, on its lines and its unsent shipment too."""
    await conn.execute(
        "UPDATE deliveries SET carrier = $3, time_slot = $4 WHERE order_id = $1 AND delivery_index = $2",
        order_id, delivery_index, carrier, time_slot,
    )
    await conn.execute(
        "UPDATE order_lines SET carrier = $3 WHERE order_id = $1 AND delivery_index = $2", order_id, delivery_index, carrier
    )
    await conn.execute(
        """
        UPDATE shipments SET carrier = $3
        WHERE order_id = $1 AND delivery_index = $2 AND status IN ('held', 'requesting', 'request_failed')
        """,
        order_id, delivery_index, carrier,
    )


async def release_held_shipments(conn: asyncpg.Connection, order_id: UUID, delivery_indices: list[int]) -> list[int]:
    """Held shipments of these groups may be requested now; returns the groups that had one."""
    rows = await conn.fetch(
        """
        UPDATE shipments SET status = 'requesting'
        WHERE order_id = $1 AND delivery_index = ANY($2::int[]) AND status = 'held' RETURNING delivery_index
        """,
        order_id, delivery_indices,
    )
    return sorted(row["delivery_index"] for row in rows)


async def hold_shipment(conn: asyncpg.Connection, shipment_id: UUID) -> None:
    """The shipment waits for staff (its warehouse request, if any, was cancelled)."""
    await conn.execute(
        "UPDATE shipments SET status = 'held', warehouse_request_id = NULL, cancel_error = NULL WHERE shipment_id = $1",
        shipment_id,
    )
