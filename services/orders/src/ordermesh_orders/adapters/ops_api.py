"""Operations' JSON endpoints of the orders service: orders that stopped moving (and what each waits for), and
finding an order by the shop's order number."""

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
from ordermesh_contracts import PaymentMethod, Stage
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import store_ops
from ..domain.progress import OrderState
from ..domain.waiting import waiting_for

MAX_IDLE = timedelta(days=3650)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, default=str, ensure_ascii=False), status_code=status, media_type="application/json")


def _bad(reason: str) -> Response:
    return JSONResponse({"error": "invalid_query", "reason": reason}, status_code=400)


def state_of(row: Any) -> OrderState:
    """The progress state of an order row."""
    return OrderState(
        stage=Stage(row["stage"]),
        payment_method=PaymentMethod(row["payment_method"]),
        flags=json.loads(row["flags"]) if isinstance(row["flags"], str) else dict(row["flags"]),
        mode=row["mode"],
        blocking_tasks=row["blocking_tasks"],
        held_from=Stage(row["held_from"]) if row["held_from"] else None,
    )


def stuck_view(row: Any, now: datetime) -> dict[str, Any]:
    """One idle order for staff: where it is, since when, and what it waits for."""
    return {
        "order_id": str(row["order_id"]),
        "shop_id": row["shop_id"],
        "external_order_no": row["external_order_no"],
        "stage": row["stage"],
        "mode": row["mode"],
        "payment_method": row["payment_method"],
        "updated_at": row["updated_at"].isoformat(),
        "idle_seconds": int((now - row["updated_at"]).total_seconds()),
        "waiting_for": [wait.as_json() for wait in waiting_for(state_of(row))],
    }


def stuck_orders(pool: Callable[[], asyncpg.Pool]):
    """GET /api/orders/stuck?older_than_seconds=1800&shop_id&limit — unfinished orders that have not moved for that long,
    oldest first, each with what it waits for (flag, value, owning service or staff)."""

    async def endpoint(request: Request) -> Response:
        q = request.query_params
        try:
            seconds = int(q.get("older_than_seconds", "1800"))
            limit = int(q.get("limit", "500"))
        except ValueError:
            return _bad("older_than_seconds and limit must be whole numbers")
        if not 0 <= seconds <= MAX_IDLE.total_seconds():
            return _bad("older_than_seconds must be between 0 and ten years")
        if not 1 <= limit <= 5000:
            return _bad("limit must be between 1 and 5000")
        shop_id = q.get("shop_id") or None
        if shop_id and "\x00" in shop_id:
            return _bad("NUL characters are not allowed")
        async with pool().acquire() as conn:
            rows = await store_ops.idle_orders(conn, timedelta(seconds=seconds), shop_id=shop_id, limit=limit)
        now = datetime.now(timezone.utc)
        return _json({"older_than_seconds": seconds, "orders": [stuck_view(row, now) for row in rows]})

    return endpoint


def find_by_number(pool: Callable[[], asyncpg.Pool]):
    """GET /api/orders/by-number?external_order_no&shop_id — the orders with this shop order number."""

    async def endpoint(request: Request) -> Response:
        number = request.query_params.get("external_order_no", "")
        shop_id = request.query_params.get("shop_id") or None
        if not number or len(number) > 200 or "\x00" in number or (shop_id and "\x00" in shop_id):
            return _bad("external_order_no is required (at most 200 characters, no NUL)")
        async with pool().acquire() as conn:
            found = await store_ops.find_by_number(conn, number, shop_id)
        return _json({"orders": found})

    return endpoint
