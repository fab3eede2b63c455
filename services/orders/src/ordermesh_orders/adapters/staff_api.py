"""Staff JSON endpoints of the orders service: list and filter orders, show one with flags, tasks and history, and
show a shop's shipping fee table."""

import json
from collections.abc import Callable
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import store, store_fees


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, default=str, ensure_ascii=False), status_code=status, media_type="application/json")


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def list_orders(pool: Callable[[], asyncpg.Pool]):
    """GET /api/orders?shop_id&stage&child_status&channel&flag&flag_value&open_task&created_from&created_to&limit"""

    async def endpoint(request: Request) -> Response:
        q = request.query_params
        try:
            limit = min(int(q.get("limit", "100")), 1000)
            created_from, created_to = _date(q.get("created_from")), _date(q.get("created_to"))
        except ValueError as error:
            return JSONResponse({"error": "invalid_query", "reason": str(error)}, status_code=400)
        async with pool().acquire() as conn:
            rows = await store.list_orders(
                conn, shop_id=q.get("shop_id"), stage=q.get("stage"), child_status=q.get("child_status"),
                channel=q.get("channel"), flag=q.get("flag"), flag_value=q.get("flag_value"),
                open_task=q.get("open_task"), created_from=created_from, created_to=created_to, limit=limit,
            )
        return _json({"orders": rows})

    return endpoint


def show_order(pool: Callable[[], asyncpg.Pool]):
    """GET /api/orders/order?order_id&shop_id — one order with every flag, task and its history."""

    async def endpoint(request: Request) -> Response:
        try:
            order_id = UUID(request.query_params.get("order_id", ""))
        except ValueError:
            return JSONResponse({"error": "invalid_query", "reason": "order_id must be a UUID"}, status_code=400)
        async with pool().acquire() as conn:
            view = await store.order_view(conn, order_id, request.query_params.get("shop_id"))
        if view is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return _json(view)

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
