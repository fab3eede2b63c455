"""SQL of the shipping service about orders and shops: order lines, deliveries, cancellations, shop settings."""

import json
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

import asyncpg
from ordermesh_servicekit.unit_of_work import InboxClaim, fetch_claiming

from .domain.delivery_dates import ShopCalendar

DEFAULT_WAREHOUSE = "main"


_SAVE_DELIVERIES = """
    INSERT INTO deliveries (order_id, delivery_index, shop_id, address, requested_date, time_slot, carrier,
                            payment_method, cod_amount, currency, accepted_at, held_checks, hold_reasons)
    SELECT $1, g.delivery_index, $2, g.address, g.requested_date, g.time_slot, g.carrier, $3, g.cod_amount, $4, $5,
           coalesce(g.held_checks, '{}'), coalesce(g.hold_reasons, '{}')
    FROM jsonb_to_recordset($6::jsonb) AS g (delivery_index integer, address jsonb, requested_date date,
         time_slot text, carrier text, cod_amount bigint, held_checks text[], hold_reasons text[])
    ON CONFLICT (order_id, delivery_index)
        DO UPDATE SET held_checks = EXCLUDED.held_checks, hold_reasons = EXCLUDED.hold_reasons"""
"""Stores order $1's delivery groups (shop $2, payment method $3, currency $4, accepted at $5, the groups as JSON $6);
a repeat changes nothing but what holds a group."""


async def save_deliveries(
    conn: asyncpg.Connection, order_id: UUID, shop_id: str, *, payment_method: str, currency: str, accepted_at: datetime,
    groups: list[dict],
) -> None:
    """Stores delivery groups in one statement: each a dict of delivery_index, address (a dict), requested_date,
    time_slot, carrier, cod_amount and, optionally, held_checks and hold_reasons (what holds it back from the
    warehouse); a repeat changes nothing but what holds a group."""
    await conn.execute(
        _SAVE_DELIVERIES, order_id, shop_id, payment_method, currency, accepted_at, json.dumps(groups, default=str)
    )


async def shop(conn: asyncpg.Connection, shop_id: str) -> asyncpg.Record | None:
    """The shop's calendar and shipper settings, if it has any."""
    return await conn.fetchrow("SELECT * FROM shops WHERE shop_id = $1", shop_id)


async def shop_calendar(conn: asyncpg.Connection, shop_id: str) -> ShopCalendar:
    """The shop's shipping calendar (the defaults when it has none)."""
    return _calendar(await shop(conn, shop_id))


def _calendar(row: asyncpg.Record | None) -> ShopCalendar:
    if row is None or row["time_zone"] is None:
        return ShopCalendar()
    return ShopCalendar(
        time_zone=row["time_zone"],
        cutoff=row["cutoff"],
        closed_weekdays=frozenset(row["closed_weekdays"]),
        closures=frozenset(row["closures"]),
        warehouse_prefecture=row["warehouse_prefecture"],
    )


class CheckInputs(NamedTuple):
    """What the delivery-date and label checks of an order read: its shop's calendar, how its skus travel (normal
    ones absent) and the check categories staff confirmed for it."""

    calendar: ShopCalendar
    cool_types: dict[str, str]
    confirmed: set[str]


async def check_inputs(conn: asyncpg.Connection, shop_id: str, order_id: UUID, skus: list[str]) -> CheckInputs:
    """Everything the checks of the order's delivery groups need, in one statement."""
    return (await check_inputs_of_orders(conn, [(order_id, shop_id, skus)]))[order_id, shop_id]


_CHECK_INPUTS = """
    SELECT o.order_id, o.shop_id, s.time_zone, s.cutoff, s.closed_weekdays, s.closures, s.warehouse_prefecture,
           ARRAY(SELECT a.sku FROM sku_attributes a WHERE a.sku = ANY(o.skus) ORDER BY a.sku) AS cool_skus,
           ARRAY(SELECT a.cool_type FROM sku_attributes a WHERE a.sku = ANY(o.skus) ORDER BY a.sku) AS cool_types,
           ARRAY(SELECT c.category FROM confirmed_checks c WHERE c.order_id = o.order_id) AS confirmed
    FROM jsonb_to_recordset($1::jsonb) AS o (order_id uuid, shop_id text, skus text[])
    LEFT JOIN shops s ON s.shop_id = o.shop_id
"""


async def check_inputs_of_orders(
    conn: asyncpg.Connection, orders: list[tuple[UUID, str, list[str]]], claim: InboxClaim | None = None
) -> dict[tuple[UUID, str], CheckInputs]:
    """Everything the checks of these orders' delivery groups need (order id, shop id, skus each), in one statement,
    by (order id, shop id); with `claim`, a batch's inbox rows written in the same statement (see `InboxClaim`)."""
    given = json.dumps([{"order_id": str(order_id), "shop_id": shop_id, "skus": skus} for order_id, shop_id, skus in orders])
    rows = await fetch_claiming(conn, claim, _CHECK_INPUTS, given, present="order_id")
    return {
        (row["order_id"], row["shop_id"]): CheckInputs(
            _calendar(row), dict(zip(row["cool_skus"], row["cool_types"])), set(row["confirmed"])
        )
        for row in rows
    }


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


async def order_lines(conn: asyncpg.Connection, order_id: UUID) -> list[asyncpg.Record]:
    """The order's lines, by delivery group."""
    return await conn.fetch(
        "SELECT * FROM order_lines WHERE order_id = $1 ORDER BY delivery_index, sku", order_id
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


async def cancellation(conn: asyncpg.Connection, order_id: UUID) -> asyncpg.Record | None:
    """The order's cancellation (shop, whether stock was restored), if staff cancelled it."""
    return await conn.fetchrow("SELECT shop_id, restore_stock FROM cancelled_orders WHERE order_id = $1", order_id)



async def replace_group_lines(
    conn: asyncpg.Connection, order_id: UUID, shop_id: str, delivery_index: int, carrier: str, lines: list[tuple]
) -> None:
    """Sets one delivery group's lines (sku, quantity, name, unit price) to these, dropping the others."""
    await conn.execute("DELETE FROM order_lines WHERE order_id = $1 AND delivery_index = $2", order_id, delivery_index)
    await conn.executemany(
        """
        INSERT INTO order_lines (order_id, shop_id, delivery_index, sku, quantity, carrier, name, unit_price)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        """,
        [(order_id, shop_id, delivery_index, sku, quantity, carrier, name, price) for sku, quantity, name, price in lines],
    )


async def set_cod_amount(conn: asyncpg.Connection, order_id: UUID, delivery_index: int, amount: int | None) -> None:
    """The cash-on-delivery amount a delivery group's carrier collects (after an edit changed the total)."""
    await conn.execute(
        "UPDATE deliveries SET cod_amount = $3 WHERE order_id = $1 AND delivery_index = $2", order_id, delivery_index, amount
    )


async def save_shop(conn: asyncpg.Connection, shop_id: str, settings: dict) -> None:
    """Sets the shop's calendar and shipper block; columns not in `settings` keep their value (or the default)."""
    columns = ["time_zone", "cutoff", "closed_weekdays", "closures", "warehouse_prefecture", "shipper"]
    given = [column for column in columns if column in settings]
    await conn.execute("INSERT INTO shops (shop_id) VALUES ($1) ON CONFLICT DO NOTHING", shop_id)
    if given:
        assignments = ", ".join(f"{column} = ${n}{'::jsonb' if column == 'shipper' else ''}" for n, column in enumerate(given, start=2))
        await conn.execute(f"UPDATE shops SET {assignments} WHERE shop_id = $1", shop_id, *[settings[c] for c in given])
