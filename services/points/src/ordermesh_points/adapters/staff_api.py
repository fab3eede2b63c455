"""Staff JSON endpoints of the points service: a customer's balance and ledger, an order's points, a shop's settings
and its scheduled expiry runs."""

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import asyncpg
from ordermesh_servicekit.http_input import query_text, query_uuid
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import store


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, default=str, ensure_ascii=False), status_code=status, media_type="application/json")


def _customer(request: Request) -> tuple[str, str]:
    return query_text(request, "shop_id", required=True), query_text(request, "customer_id", required=True)


def balance(pool: Callable[[], asyncpg.Pool]):
    """GET /api/points/balance?shop_id&customer_id — available, provisional, reserved, used, lifetime and debt."""

    async def endpoint(request: Request) -> Response:
        who = _customer(request)
        async with pool().acquire() as conn:
            found = await store.balance(conn, *who)
        return _json({"shop_id": who[0], "customer_id": who[1], **asdict(found)})

    return endpoint


def ledger(pool: Callable[[], asyncpg.Pool]):
    """GET /api/points/ledger?shop_id&customer_id — every entry, oldest first, with its cause."""

    async def endpoint(request: Request) -> Response:
        who = _customer(request)
        async with pool().acquire() as conn:
            entries = await store.ledger_rows(conn, *who)
        return _json({"shop_id": who[0], "customer_id": who[1], "entries": entries})

    return endpoint


def order(pool: Callable[[], asyncpg.Pool]):
    """GET /api/points/order?order_id — the order's points, its confirmed marker and its entries."""

    async def endpoint(request: Request) -> Response:
        order_id = query_uuid(request, "order_id")
        async with pool().acquire() as conn:
            view = await store.order_row(conn, order_id)
        return _json(view) if view else JSONResponse({"error": "not_found", "reason": "no points for this order"}, status_code=404)

    return endpoint


def settings(pool: Callable[[], asyncpg.Pool]):
    """GET /api/points/settings?shop_id — the shop's points rules (the defaults when it has none), in the shape
    SetPointsSettings takes them."""

    async def endpoint(request: Request) -> Response:
        shop_id = query_text(request, "shop_id", required=True)
        async with pool().acquire() as conn:
            found = await store.shop_settings(conn, shop_id)
        campaigns = [{**asdict(c), "skus": sorted(c.skus) if c.skus is not None else None} for c in found.campaigns]
        return _json({"shop_id": shop_id, **asdict(found), "campaigns": campaigns})

    return endpoint


def expiry_runs(pool: Callable[[], asyncpg.Pool]):
    """GET /api/points/expiry-runs?shop_id — the shop's scheduled expiry runs, newest first."""

    async def endpoint(request: Request) -> Response:
        shop_id = query_text(request, "shop_id", required=True)
        async with pool().acquire() as conn:
            runs = await store.expiry_runs(conn, shop_id)
        return _json({"shop_id": shop_id, "runs": runs})

    return endpoint
