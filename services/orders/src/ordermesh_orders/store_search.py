"""SQL of the staff's order search: filters, free-text search, paging with a total, and the queue of open tasks."""

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg


@dataclass(frozen=True)
class OrderSearch:
    """What staff filter orders by; every given condition must hold. Days are calendar days in `timezone`."""

    shop_id: str | None = None
    stage: str | None = None
    child_status: str | None = None
    channel: str | None = None
    payment_method: str | None = None
    flag: str | None = None
    flag_value: str | None = None
    open_task: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    text: str | None = None
    """Shop order number or customer id (exact), or part of the customer's name."""
    label: str | None = None
    timezone: str = "UTC"


_WHERE = """
    WHERE ($1::text IS NULL OR o.shop_id = $1)
      AND ($2::text IS NULL OR o.stage = $2)
      AND ($3::text IS NULL OR o.child_status = $3)
      AND ($4::text IS NULL OR o.channel = $4)
      AND ($5::text IS NULL OR o.payment_method = $5)
      AND ($6::text IS NULL OR o.flags ->> $6 = $7)
      AND ($8::text IS NULL OR EXISTS (
            SELECT 1 FROM order_tasks t WHERE t.order_id = o.order_id AND t.status = 'open' AND t.kind = $8))
      AND ($9::date IS NULL OR o.created_at >= ($9::date)::timestamp AT TIME ZONE $13)
      AND ($10::date IS NULL OR o.created_at < ($10::date + 1)::timestamp AT TIME ZONE $13)
      AND ($11::text IS NULL OR o.external_order_no = $11 OR o.snapshot -> 'customer' ->> 'customer_id' = $11
           OR o.snapshot -> 'customer' ->> 'name' ILIKE '%' || $14 || '%' ESCAPE '\\')
      AND ($12::text IS NULL OR $12 = ANY(o.labels))
"""


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _args(search: OrderSearch) -> list[Any]:
    return [
        search.shop_id, search.stage, search.child_status, search.channel, search.payment_method,
        search.flag, search.flag_value, search.open_task, search.created_from, search.created_to,
        search.text, search.label, search.timezone, _like_escaped(search.text) if search.text else None,
    ]


async def search_orders(
    conn: asyncpg.Connection, search: OrderSearch, *, offset: int = 0, limit: int = 100
) -> tuple[list[dict[str, Any]], int]:
    """One page of matching orders, newest first, with every flag, and how many match in all."""
    args = _args(search)
    total = await conn.fetchval(f"SELECT count(*) FROM orders o {_WHERE}", *args)
    rows = await conn.fetch(
        f"""
        SELECT o.order_id, o.shop_id, o.channel, o.external_order_no, o.stage, o.mode, o.held_from, o.child_status,
               o.payment_method, o.total, o.currency, o.flags, o.labels, o.carrier, o.ship_date, o.created_at,
               o.snapshot -> 'customer' ->> 'customer_id' AS customer_id,
               o.snapshot -> 'customer' ->> 'name' AS customer_name,
               (SELECT count(*) FROM order_tasks t WHERE t.order_id = o.order_id AND t.status = 'open') AS open_tasks
        FROM orders o {_WHERE}
        ORDER BY o.created_at DESC, o.order_id
        OFFSET $15 LIMIT $16
        """,
        *args, offset, limit,
    )
    return [{**dict(row), "flags": json.loads(row["flags"])} for row in rows], total


async def open_task_queue(
    conn: asyncpg.Connection, shop_id: str | None, kind: str | None, *, offset: int = 0, limit: int = 100
) -> tuple[list[dict[str, Any]], int]:
    """Open tasks of every order, oldest first, with their order's number and stage, and how many are open in all."""
    where = "WHERE t.status = 'open' AND ($1::text IS NULL OR o.shop_id = $1) AND ($2::text IS NULL OR t.kind = $2)"
    total = await conn.fetchval(f"SELECT count(*) FROM order_tasks t JOIN orders o USING (order_id) {where}", shop_id, kind)
    rows = await conn.fetch(
        f"""
        SELECT t.task_id, t.order_id, t.kind, t.note, t.blocking, t.opened_at, t.opened_by,
               o.shop_id, o.external_order_no, o.stage
        FROM order_tasks t JOIN orders o USING (order_id) {where}
        ORDER BY t.opened_at, t.task_id
        OFFSET $3 LIMIT $4
        """,
        shop_id, kind, offset, limit,
    )
    return [dict(row) for row in rows], total
