"""Operations pages: the queue of open tasks and the services' health."""

from starlette.requests import Request
from starlette.responses import Response

from ..adapters.services import ServiceUnavailable
from ..domain.roles import Permission
from .common import Refused, console_of, render, require

PAGE_SIZE = 100


async def task_queue(request: Request) -> Response:
    """GET /tasks?shop_id&kind&page — open tasks of every order, oldest first."""
    session = await require(request, Permission.VIEW)
    try:
        page = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        raise Refused(400, "page: not a number") from None
    params = {k: request.query_params.get(k) for k in ("shop_id", "kind") if request.query_params.get(k)}
    if any(len(v) > 200 or "\x00" in v for v in params.values()):
        raise Refused(400, "shop_id, kind: too long or not allowed characters")
    try:
        answer = await console_of(request).reader.get(
            "orders", "/api/orders/tasks", **params, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
        )
    except ServiceUnavailable as error:
        raise Refused(502, str(error)) from error
    pages = max(1, -(-answer["total"] // PAGE_SIZE))
    return render(request, "tasks.html", session, tasks=answer["tasks"], total=answer["total"], page=page, pages=pages, params=params)


async def health(request: Request) -> Response:
    """GET /operations/health — each service's readiness and its checks."""
    session = await require(request, Permission.VIEW)
    return render(request, "health.html", session, services=await console_of(request).reader.health())
