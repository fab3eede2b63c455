"""Staff JSON endpoints of the orders service: list and filter orders, show one with flags, tasks and history, and
show a shop's shipping fee table."""

import json
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from ordermesh_servicekit.http_input import HttpRefusal, query_date, query_int, query_text, query_uuid
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import store, store_fees, store_search
from ..domain.taxes import tax_of
from ..store_search import OrderSearch

MAX_OFFSET = 10_000_000
"""Deepest page offset a search may ask for."""


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, default=str, ensure_ascii=False), status_code=status, media_type="application/json")


def _search(request: Request) -> OrderSearch:
    text = lambda name: query_text(request, name)  # noqa: E731
    timezone = text("tz") or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise HttpRefusal(400, "invalid_query", f"unknown time zone {timezone!r}") from None
    return OrderSearch(
        shop_id=text("shop_id"), stage=text("stage"), child_status=text("child_status"), channel=text("channel"),
        payment_method=text("payment_method"), flag=text("flag"), flag_value=text("flag_value"), open_task=text("open_task"),
        created_from=query_date(request, "created_from"), created_to=query_date(request, "created_to"),
        text=(text("q") or "").strip() or None, label=text("label"), timezone=timezone,
    )


def _page(request: Request, default_limit: int) -> tuple[int, int]:
    offset = query_int(request, "offset", default=0, minimum=0, maximum=MAX_OFFSET)
    return offset, query_int(request, "limit", default=default_limit, minimum=1, maximum=1000)


def list_orders(pool: Callable[[], asyncpg.Pool]):
    """GET /api/orders?shop_id&stage&child_status&channel&payment_method&flag&flag_value&open_task&label&q
    &created_from&created_to&tz&offset&limit — one page of orders (newest first, every flag) and the total."""

    async def endpoint(request: Request) -> Response:
        search, (offset, limit) = _search(request), _page(request, 100)
        async with pool().acquire() as conn:
            rows, total = await store_search.search_orders(conn, search, offset=offset, limit=limit)
        return _json({"orders": rows, "total": total, "offset": offset, "limit": limit})

    return endpoint


def open_tasks(pool: Callable[[], asyncpg.Pool]):
    """GET /api/orders/tasks?shop_id&kind&offset&limit — open tasks of every order, oldest first, and how many."""

    async def endpoint(request: Request) -> Response:
        offset, limit = _page(request, 100)
        shop_id, kind = query_text(request, "shop_id"), query_text(request, "kind")
        async with pool().acquire() as conn:
            rows, total = await store_search.open_task_queue(conn, shop_id, kind, offset=offset, limit=limit)
        return _json({"tasks": rows, "total": total, "offset": offset, "limit": limit})

    return endpoint


def show_order(pool: Callable[[], asyncpg.Pool]):
    """GET /api/orders/order?order_id&shop_id — one order with every flag, task and its history, and its amount and
    tax per rate (`tax_breakdown`)."""

    async def endpoint(request: Request) -> Response:
        order_id, shop_id = query_uuid(request, "order_id"), query_text(request, "shop_id")
        async with pool().acquire() as conn:
            view = await store.order_view(conn, order_id, shop_id)
        if view is None:
            return JSONResponse({"error": "not_found", "reason": "no such order"}, status_code=404)
        return _json({**view, "tax_breakdown": tax_of(view["contents"])})

    return endpoint


def show_shipping_fees(pool: Callable[[], asyncpg.Pool]):
    """GET /api/orders/shipping-fees?shop_id — the shop's shipping fee table (404 when it has set none)."""

    async def endpoint(request: Request) -> Response:
        shop_id = query_text(request, "shop_id", required=True)
        async with pool().acquire() as conn:
            table = await store_fees.fee_table(conn, shop_id)
        if table is None:
            return JSONResponse({"error": "not_found", "reason": f"shop {shop_id} has no shipping fee table"}, status_code=404)
        return _json({"shop_id": shop_id, **table.as_json()})

    return endpoint
