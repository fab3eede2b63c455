"""Staff JSON endpoints of the orders service: list and filter orders, show one with flags, tasks and history, and
show a shop's shipping fee table."""

import json
from collections.abc import Callable
from datetime import date
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import store, store_fees, store_search
from ..domain.taxes import tax_of
from ..store_search import OrderSearch


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, default=str, ensure_ascii=False), status_code=status, media_type="application/json")


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _search(q) -> OrderSearch:
    if any("\x00" in value for value in q.values()):
        raise ValueError("NUL characters are not allowed")
    timezone = q.get("tz") or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {timezone!r}") from error
    return OrderSearch(
        shop_id=q.get("shop_id") or None, stage=q.get("stage") or None, child_status=q.get("child_status") or None,
        channel=q.get("channel") or None, payment_method=q.get("payment_method") or None, flag=q.get("flag") or None,
        flag_value=q.get("flag_value") or None, open_task=q.get("open_task") or None,
        created_from=_date(q.get("created_from")), created_to=_date(q.get("created_to")),
        text=(q.get("q") or "").strip() or None, label=q.get("label") or None, timezone=timezone,
    )


def _page(q, default_limit: int) -> tuple[int, int]:
    offset, limit = int(q.get("offset", "0")), int(q.get("limit", str(default_limit)))
    if offset < 0 or limit < 1:
        raise ValueError("offset must be 0 or more and limit 1 or more")
    return offset, min(limit, 1000)


def _refuse(error: Exception) -> Response:
    return JSONResponse({"error": "invalid_query", "reason": str(error)}, status_code=400)


def list_orders(pool: Callable[[], asyncpg.Pool]):
    """GET /api/orders?shop_id&stage&child_status&channel&payment_method&flag&flag_value&open_task&label&q
    &created_from&created_to&tz&offset&limit — one page of orders (newest first, every flag) and the total."""

    async def endpoint(request: Request) -> Response:
        q = request.query_params
        try:
            search, (offset, limit) = _search(q), _page(q, 100)
        except ValueError as error:
            return _refuse(error)
        async with pool().acquire() as conn:
            rows, total = await store_search.search_orders(conn, search, offset=offset, limit=limit)
        return _json({"orders": rows, "total": total, "offset": offset, "limit": limit})

    return endpoint


def open_tasks(pool: Callable[[], asyncpg.Pool]):
    """GET /api/orders/tasks?shop_id&kind&offset&limit — open tasks of every order, oldest first, and how many."""

    async def endpoint(request: Request) -> Response:
        q = request.query_params
        try:
            offset, limit = _page(q, 100)
        except ValueError as error:
            return _refuse(error)
        async with pool().acquire() as conn:
            rows, total = await store_search.open_task_queue(
                conn, q.get("shop_id") or None, q.get("kind") or None, offset=offset, limit=limit
            )
        return _json({"tasks": rows, "total": total, "offset": offset, "limit": limit})

    return endpoint


def show_order(pool: Callable[[], asyncpg.Pool]):
    """GET /api/orders/order?order_id&shop_id — one order with every flag, task and its history, and its amount and
    tax per rate (`tax_breakdown`)."""

    async def endpoint(request: Request) -> Response:
        try:
            order_id = UUID(request.query_params.get("order_id", ""))
        except ValueError:
            return JSONResponse({"error": "invalid_query", "reason": "order_id must be a UUID"}, status_code=400)
        async with pool().acquire() as conn:
            view = await store.order_view(conn, order_id, request.query_params.get("shop_id"))
        if view is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return _json({**view, "tax_breakdown": tax_of(view["contents"])})

    return endpoint


def show_shipping_fees(pool: Callable[[], asyncpg.Pool]):
    """GET /api/orders/shipping-fees?shop_id — the shop's shipping fee table (404 when it has set none)."""

    async def endpoint(request: Request) -> Response:
        shop_id = request.query_params.get("shop_id")
        if not shop_id:
            return JSONResponse({"error": "invalid_query", "reason": "shop_id is required"}, status_code=400)
        async with pool().acquire() as conn:
            table = await store_fees.fee_table(conn, shop_id)
        if table is None:
            return JSONResponse({"error": "not_found", "reason": f"shop {shop_id} has no shipping fee table"}, status_code=404)
        return _json({"shop_id": shop_id, **table.as_json()})

    return endpoint
