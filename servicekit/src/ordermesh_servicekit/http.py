"""The HTTP side of a service: liveness, readiness, Prometheus metrics, and the wrapper every endpoint runs in."""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import structlog
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .database import is_transient_db_error
from .http_input import ASGIApp, HttpRefusal, require_bearer

RETRY_AFTER_SECONDS = 5
"""What a 503 tells the caller to wait before trying again."""

_INPUT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.DataError,  # PostgreSQL refused a value (class 22: NUL in text, out of range, bad encoding)
    asyncpg.exceptions._base.DataError,  # asyncpg could not encode a query argument
    RecursionError,
    UnicodeError,
)


def asgi_endpoint(func: Callable[[Request], Awaitable[Response]], *, methods: Sequence[str] | None = None) -> ASGIApp:
    """Turns `async def f(request) -> Response` into a plain ASGI app for AsgiFastStream's routes.

    Other methods than `methods` (when given) are answered 405. An `HttpRefusal` raised while reading the request is
    answered as its 4xx with a JSON reason. Anything else that escapes is the last resort: logged, and answered
    400 when the input caused it (the database refused a value), 503 with Retry-After when PostgreSQL or Kafka is
    unavailable, and 500 otherwise (a bug: every parser should have refused the input before).
    """
    allowed = tuple(methods) if methods else None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        try:
            if allowed and request.method not in allowed:
                raise HttpRefusal(
                    405, "method_not_allowed", f"use {' or '.join(allowed)}", headers={"Allow": ", ".join(allowed)}
                )
            response = await func(request)
        except HttpRefusal as refusal:
            response = refusal.response()
        except Exception as error:  # noqa: BLE001 - the last resort: every failure becomes a logged, reasoned answer
            response = _last_resort(request, error)
        await response(scope, receive, send)

    return app


def _last_resort(request: Request, error: Exception) -> Response:
    log = structlog.get_logger("ordermesh.http").bind(method=request.method, path=request.url.path, error=type(error).__name__)
    if isinstance(error, _INPUT_ERRORS):
        log.error("bad input reached past the endpoint's parser", exc_info=error)
        return JSONResponse({"error": "invalid_input", "reason": f"a value was refused ({type(error).__name__})"}, status_code=400)
    if isinstance(error, MessageSizeTooLargeError):
        log.warning("message too large for Kafka")
        return JSONResponse({"error": "body_too_large", "reason": "the message is too large to be queued"}, status_code=413)
    if is_transient_db_error(error) or isinstance(error, KafkaError):
        log.warning("dependency unavailable, answered 503")
        return JSONResponse(
            {"error": "unavailable", "reason": "a dependency is unavailable; try again later"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    log.error("unexpected failure of an endpoint", exc_info=error)
    return JSONResponse({"error": "internal_error", "reason": f"unexpected {type(error).__name__}; it was logged"}, status_code=500)


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
        ("/healthz", asgi_endpoint(healthz, methods=("GET", "HEAD"))),
        ("/readyz", asgi_endpoint(readyz, methods=("GET", "HEAD"))),
        ("/metrics", asgi_endpoint(metrics, methods=("GET", "HEAD"))),
    ]


def staff_endpoint(
    token: str, func: Callable[[Request], Awaitable[Response]], *, methods: Sequence[str] = ("GET",)
) -> ASGIApp:
    """A JSON endpoint for staff tools: refuses calls without `Authorization: Bearer <token>` (constant-time compare)."""

    async def guarded(request: Request) -> Response:
        require_bearer(request, token)
        return await func(request)

    return asgi_endpoint(guarded, methods=methods)
