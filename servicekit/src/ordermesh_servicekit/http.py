"""The HTTP side of a service: liveness, readiness, Prometheus metrics, and small JSON helpers for ingress routes."""

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def asgi_endpoint(func: Callable[[Request], Awaitable[Response]]) -> ASGIApp:
    """Turns `async def f(request) -> Response` into a plain ASGI app for AsgiFastStream's routes."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        response = await func(Request(scope, receive))
        await response(scope, receive, send)

    return app


def health_routes(is_ready: Callable[[], Awaitable[dict[str, bool]]], registry: Any) -> list[tuple[str, ASGIApp]]:
    """/healthz (the process answers), /readyz (every dependency is up) and /metrics."""

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        checks = await is_ready()
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return [
        ("/healthz", asgi_endpoint(healthz)),
        ("/readyz", asgi_endpoint(readyz)),
        ("/metrics", asgi_endpoint(metrics)),
    ]


def staff_endpoint(token: str, func: Callable[[Request], Awaitable[Response]]) -> ASGIApp:
    """A JSON endpoint for staff tools: refuses calls without the bearer token (constant-time compare)."""

    async def guarded(request: Request) -> Response:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").encode()
        if not token or not hmac.compare_digest(supplied, token.encode()):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return await func(request)

    return asgi_endpoint(guarded)
