"""Operations pages: the queue of open tasks, orders that stopped moving, the services' health and consumer lag —
read through the same endpoints and functions as the `ordermesh` CLI (`orders stuck`, `lag`, `dlq list`)."""

import asyncio
from collections import Counter

from ordermesh_ops.timespec import parse_duration
from ordermesh_servicekit.http_input import HttpRefusal, query_int, query_text
from starlette.requests import Request
from starlette.responses import Response

from ..domain.roles import Permission
from .common import console_of, render, require

PAGE_SIZE = 100
STUCK_LIMIT = 500


async def task_queue(request: Request) -> Response:
    """GET /tasks?shop_id&kind&page — open tasks of every order, oldest first."""
    session = await require(request, Permission.VIEW)
    page = query_int(request, "page", default=1, minimum=1, maximum=1_000_000)
    params = {k: v for k in ("shop_id", "kind") if (v := query_text(request, k, max_length=200))}
    answer = await console_of(request).reader.get(
        "orders", "/api/orders/tasks", **params, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    pages = max(1, -(-answer["total"] // PAGE_SIZE))
    return render(request, "tasks.html", session, tasks=answer["tasks"], total=answer["total"], page=page, pages=pages, params=params)


async def pending_dead_letters_by_order(request: Request) -> Counter | str:
    """How many pending dead letters name each order id; the reason instead when Kafka can't be read in time."""
    letters = await console_of(request).kafka_views.pending_dead_letters()
    if isinstance(letters, str):
        return letters
    return Counter(summary["order_id"] for summary in letters if summary["order_id"])


async def stuck_orders(request: Request) -> Response:
    """GET /operations/stuck?older_than=30m&shop_id — unfinished orders with no progress for that long, oldest first,
    each with what it waits for (flag, value, owning service or staff) and its pending dead letters."""
    session = await require(request, Permission.VIEW)
    older_than = query_text(request, "older_than", max_length=16) or "30m"
    try:
        seconds = int(parse_duration(older_than).total_seconds())
    except (ValueError, OverflowError) as error:
        raise HttpRefusal(400, "invalid_query", f"older_than: {error}") from None
    if seconds > 3650 * 86400:
        raise HttpRefusal(400, "invalid_query", "older_than must be at most ten years")
    shop_id = query_text(request, "shop_id", max_length=64)
    answer, letters = await asyncio.gather(
        console_of(request).reader.stuck_orders(seconds, shop_id, STUCK_LIMIT), pending_dead_letters_by_order(request)
    )
    return render(
        request, "stuck.html", session, orders=answer, older_than=older_than, shop_id=shop_id or "",
        limit=STUCK_LIMIT, dead_letters=letters if isinstance(letters, Counter) else Counter(),
        dead_letters_error=letters if isinstance(letters, str) else "",
    )


async def health(request: Request) -> Response:
    """GET /operations/health — each service's readiness and its checks, and every service group's consumer lag per
    topic (partitions summed, the worst one named)."""
    session = await require(request, Permission.VIEW)
    console = console_of(request)
    services, lag = await asyncio.gather(console.reader.health(), console.kafka_views.lag())
    return render(
        request, "health.html", session, services=services, lag=lag if isinstance(lag, list) else [],
        lag_error=lag if isinstance(lag, str) else "",
    )
