"""Wires the console: settings, database and migrations, the bootstrap admin, service reads, the command channel, pages."""

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import structlog
import uvicorn
from jinja2 import Environment, FileSystemLoader, select_autoescape
from ordermesh_ops.client import CommandChannel, Connection
from ordermesh_servicekit.database import create_pool_when_ready
from ordermesh_servicekit.http_input import HttpRefusal, limit_body
from ordermesh_servicekit.http_server import BoundedHttpToolsProtocol
from ordermesh_servicekit.kafka_clients import aiokafka_options
from ordermesh_servicekit.logging import configure_logging
from ordermesh_servicekit.metrics import Metrics
from ordermesh_servicekit.migrations import migrate_service
from ordermesh_servicekit.service import wait_for_kafka
from ordermesh_servicekit.settings import ServiceSettings
from pydantic import Field, SecretStr
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.routing import Mount

from . import store
from .adapters.commands import CommandSender
from .adapters.kafka_views import KafkaViews
from .adapters.services import SERVICES, ServiceReader, ServiceRefused, ServiceUnavailable
from .domain.passwords import check_policy, hash_password
from .domain.roles import Role
from .pages import accounts, auth, bulk, deadletters, operations, order, orders, settings as settings_pages
from .pages.common import (
    MAX_BODY_BYTES,
    Console,
    LoginRequired,
    Refused,
    current_session,
    login_redirect,
    redirect,
    render,
)

HERE = Path(__file__).parent


class ConsoleSettings(ServiceSettings):
    """Settings of the console (ORDERMESH_ prefix, like every service)."""

    http_port: int = 8106
    orders_url: str = Field(default="http://127.0.0.1:8101", description="The orders service's HTTP address.")
    payments_url: str = Field(default="http://127.0.0.1:8102", description="The payments service's HTTP address.")
    shipping_url: str = Field(default="http://127.0.0.1:8103", description="The shipping service's HTTP address.")
    points_url: str = Field(default="http://127.0.0.1:8104", description="The points service's HTTP address.")
    notify_url: str = Field(default="http://127.0.0.1:8105", description="The notify service's HTTP address.")
    console_admin_username: str = Field(default="admin", description="The bootstrap admin's user name.")
    console_admin_password: SecretStr = Field(
        default=SecretStr(""),
        description="The bootstrap admin's password (at least 10 characters; a mounted file through _FILE); empty: no bootstrap.",
    )
    console_timezone: str = Field(default="Asia/Tokyo", description="Time zone dates are shown and filtered in.")
    console_session_hours: float = Field(default=12.0, gt=0, description="How long a login lasts.")
    console_secure_cookies: bool = Field(default=False, description="Send cookies over HTTPS only (set behind TLS).")
    console_command_timeout_seconds: float = Field(default=30.0, gt=0, description="How long to wait for a command's reply.")


async def bootstrap_admin(pool: Any, settings: ConsoleSettings, log: Any) -> None:
    """Creates the admin account from the secret when it does not exist yet (an existing one is left as it is)."""
    password = settings.console_admin_password.get_secret_value()
    if not password:
        return
    check_policy(password)
    password_hash = await asyncio.to_thread(hash_password, password)
    async with pool.acquire() as conn:
        created = await store.create_account(
            conn, settings.console_admin_username, settings.console_admin_username, Role.ADMIN, password_hash, "bootstrap"
        )
    if created:
        log.info("bootstrap admin created", username=settings.console_admin_username)


def _templates() -> Environment:
    return Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]), auto_reload=False)


def create_app(settings: ConsoleSettings | None = None) -> Starlette:
    """The console's ASGI app; everything it needs is made in its lifespan."""
    settings = settings or ConsoleSettings()
    configure_logging("console", settings.log_level)
    log = structlog.get_logger("console")
    metrics = Metrics("console")
    ready = {"database": False, "kafka": False}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await create_pool_when_ready(
            settings.database_url.get_secret_value(), size=settings.db_pool_size,
            max_wait_seconds=settings.startup_retry_max_seconds, log=log,
        )
        async with pool.acquire() as conn:
            await migrate_service(conn, "console", HERE / "migrations")
        await bootstrap_admin(pool, settings, log)
        kafka = aiokafka_options(settings)
        await wait_for_kafka(kafka, settings.startup_retry_max_seconds, log)
        bootstrap = kafka.pop("bootstrap_servers")
        channel = CommandChannel(bootstrap, security=kafka, client_id="ordermesh-console")
        await channel.start()
        client = httpx.AsyncClient(timeout=10)
        urls = {name: getattr(settings, f"{name}_url") for name in SERVICES}
        connection = Connection(bootstrap, urls, settings.api_token.get_secret_value(), kafka)
        app.state.console = Console(
            pool=pool,
            reader=ServiceReader(urls, settings.api_token.get_secret_value(), client),
            sender=CommandSender(channel, pool, settings.console_command_timeout_seconds),
            templates=_templates(),
            timezone=settings.console_timezone,
            secure_cookies=settings.console_secure_cookies,
            session_hours=settings.console_session_hours,
            connection=connection,
            kafka_views=KafkaViews(connection),
        )
        ready.update(database=True, kafka=True)
        log.info("console started", port=settings.http_port)
        try:
            yield
        finally:
            ready.update(database=False, kafka=False)
            await channel.stop()
            await client.aclose()
            await pool.close()

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks = dict(ready)
        console = getattr(request.app.state, "console", None)
        if console is not None:
            try:
                checks["database"] = await console.pool.fetchval("SELECT true", timeout=2) is True
            except Exception:  # noqa: BLE001 - any failure means not ready
                checks["database"] = False
        ok = all(checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    async def prometheus(_request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def home(request: Request) -> Response:
        return redirect("/orders" if await current_session(request) else "/login")

    async def login_required(request: Request, _exc: Exception) -> Response:
        return login_redirect(request)

    async def error_page(request: Request, status: int, error: str, reasons: list[str]) -> Response:
        session = None
        if hasattr(request.app.state, "console"):
            try:
                session = await current_session(request)
            except Exception:  # noqa: BLE001 - the error page must show even when the database is what failed
                session = None
        return render(request, "error.html", session, status=status, error=error, reasons=reasons, status_code=status)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return await error_page(request, exc.status, "refused", exc.reasons)

    async def http_refusal(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HttpRefusal)
        return await error_page(request, exc.status, exc.error, [exc.reason])

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code < 400:
            return Response(status_code=exc.status_code, headers=exc.headers)
        reason = {404: "no such page", 405: f"{request.method} is not allowed here"}.get(exc.status_code, str(exc.detail))
        response = await error_page(request, exc.status_code, "http_error", [reason])
        response.headers.update(exc.headers or {})
        return response

    async def service_failed(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ServiceRefused):
            return await error_page(request, 400, "refused_by_service", [str(exc)])
        return await error_page(request, 502, "service_unavailable", [str(exc)])

    routes = [
        Route("/", home),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", prometheus),
        Route("/login", auth.login_page, methods=["GET"]),
        Route("/login", auth.login, methods=["POST"]),
        Route("/logout", auth.logout, methods=["POST"]),
        Route("/language", auth.choose_language),
        Route("/orders", orders.order_list),
        Route("/orders.csv", orders.order_csv),
        Route("/orders/bulk", bulk.bulk_action, methods=["POST"]),
        Route("/orders/{order_id}", order.order_page),
        Route("/orders/{order_id}/{action}", order.order_action, methods=["POST"]),
        Route("/tasks", operations.task_queue),
        Route("/operations/health", operations.health),
        Route("/operations/stuck", operations.stuck_orders),
        Route("/operations/dead-letters", deadletters.dead_letter_list),
        Route("/operations/dead-letters/{letter_id}", deadletters.dead_letter_page),
        Route("/operations/dead-letters/{letter_id}/{action}", deadletters.dead_letter_action, methods=["POST"]),
        Route("/accounts", accounts.account_list, methods=["GET"]),
        Route("/accounts", accounts.create_account, methods=["POST"]),
        Route("/accounts/{username}", accounts.change_account, methods=["POST"]),
        Route("/settings", settings_pages.settings_page, methods=["GET"]),
        Route("/settings/{kind}", settings_pages.save_settings, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan,
        exception_handlers={
            LoginRequired: login_required, Refused: refused, HttpRefusal: http_refusal, ServiceUnavailable: service_failed,
            HTTPException: http_error,
        },
    )
    return app


def main() -> None:
    """Runs the console until SIGINT/SIGTERM."""
    settings = ConsoleSettings()
    uvicorn.run(
        limit_body(create_app(settings), MAX_BODY_BYTES), host=settings.http_host, port=settings.http_port, log_config=None, access_log=False,
        lifespan="on", http=BoundedHttpToolsProtocol,
    )
