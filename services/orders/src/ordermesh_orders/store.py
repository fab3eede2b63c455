"""SQL of the orders service: the orders table and each order's history."""

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from ordermesh_contracts import OrderAccepted, PaymentMethod, Stage

from .domain.progress import OrderState


@dataclass(frozen=True)
class StoredOrder:
    """An order row as the handlers need it."""

    order_id: UUID
    shop_id: str
    external_order_no: str
    correlation_id: UUID
    state: OrderState


async def insert_order(conn: asyncpg.Connection, accepted: OrderAccepted, state: OrderState) -> bool:
    """Inserts a new order; False if the shop's order number is already known."""
    inserted = await conn.fetchval(
        """
        INSERT INTO orders (order_id, shop_id, channel, external_order_no, stage, mode, payment_method,
                            currency, total, flags, snapshot, correlation_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12)
        ON CONFLICT DO NOTHING
        RETURNING true
        """,
        accepted.order_id,
        accepted.shop_id,
        accepted.channel.value,
        accepted.external_order_no,
        state.stage.value,
        state.mode,
        state.payment_method.value,
        accepted.currency,
        accepted.charges.total,
        json.dumps(state.flags),
        accepted.model_dump_json(),
        accepted.correlation_id,
    )
    return bool(inserted)


async def lock_order(conn: asyncpg.Connection, order_id: UUID) -> StoredOrder | None:
    """Reads an order and locks its row until the transaction ends, so one order's events apply in turn."""
    row = await conn.fetchrow(
        """
        SELECT order_id, shop_id, external_order_no, correlation_id, stage, mode, payment_method, flags
        FROM orders WHERE order_id = $1 FOR UPDATE
        """,
        order_id,
    )
    if row is None:
        return None
    return StoredOrder(
        order_id=row["order_id"],
        shop_id=row["shop_id"],
        external_order_no=row["external_order_no"],
        correlation_id=row["correlation_id"],
        state=OrderState(
            stage=Stage(row["stage"]),
            payment_method=PaymentMethod(row["payment_method"]),
            flags=json.loads(row["flags"]),
            mode=row["mode"],
        ),
    )


async def save_state(conn: asyncpg.Connection, order_id: UUID, state: OrderState) -> None:
    """Writes the order's stage, mode and flags."""
    await conn.execute(
        "UPDATE orders SET stage = $2, mode = $3, flags = $4::jsonb, updated_at = now() WHERE order_id = $1",
        order_id,
        state.stage.value,
        state.mode,
        json.dumps(state.flags),
    )


async def add_history(
    conn: asyncpg.Connection,
    order_id: UUID,
    entries: list[tuple[str, dict[str, Any]]],
    *,
    actor: str,
    cause_id: UUID | None,
) -> None:
    """Appends what happened to the order's history."""
    await conn.executemany(
        "INSERT INTO order_history (order_id, actor, cause_id, what, details) VALUES ($1, $2, $3, $4, $5::jsonb)",
        [(order_id, actor, cause_id, what, json.dumps(details)) for what, details in entries],
    )
