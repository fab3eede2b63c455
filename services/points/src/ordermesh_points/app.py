"""Wires the points service: subscriptions, staff commands and endpoints, outputs."""

from datetime import datetime, timezone
from pathlib import Path

from faststream.asgi import AsgiFastStream
from pydantic import Field

from ordermesh_contracts import (
    BulkConfirmPoints,
    DeductPoints,
    ExpirePoints,
    GrantPoints,
    OrderAccepted,
    OrderCancelled,
    OrderCompleted,
    OrderEdited,
    OrderReturned,
    OrdersEvent,
    PaymentCaptured,
    PaymentReceived,
    PaymentsEvent,
    PointsCommand,
    PointsEvent,
    SetPointsSettings,
    topics,
)
from ordermesh_servicekit.commands import reject_invalid_commands
from ordermesh_servicekit.consuming import Subscription
from ordermesh_servicekit.http import staff_endpoint
from ordermesh_servicekit.service import ServiceDefinition, ServiceRuntime, create_service_app, run_service
from ordermesh_servicekit.settings import ServiceSettings

from . import commands, handlers
from .adapters import staff_api
from .expiry import run_scheduled_expiry


class PointsSettings(ServiceSettings):
    """Settings of the points service."""

    http_port: int = 8104
    points_expiry_interval_seconds: float = Field(
        default=3600,
        gt=0,
        description="How often the scheduled expiry looks for shops whose day has not run yet (each shop runs once a day).",
    )


def staff_routes(runtime: ServiceRuntime, token: str) -> list:
    """The staff JSON endpoints, behind the API token."""
    pool = lambda: runtime.pool  # noqa: E731 - the pool exists only once the service has started
    return [
        ("/api/points/balance", staff_endpoint(token, staff_api.balance(pool))),
        ("/api/points/ledger", staff_endpoint(token, staff_api.ledger(pool))),
        ("/api/points/order", staff_endpoint(token, staff_api.order(pool))),
        ("/api/points/settings", staff_endpoint(token, staff_api.settings(pool))),
        ("/api/points/expiry-runs", staff_endpoint(token, staff_api.expiry_runs(pool))),
    ]


def create_app(settings: PointsSettings | None = None) -> AsgiFastStream:
    """The points service's app."""
    settings = settings or PointsSettings()

    async def start_expiry(runtime: ServiceRuntime) -> None:
        async def expire() -> None:
            expired = await run_scheduled_expiry(runtime.pool, datetime.now(timezone.utc), handlers.SHOP_TIMEZONE)
            if expired:
                runtime.log.info("scheduled points expiry ran", shops=len(expired), points=sum(expired.values()))

        runtime.every("points-expiry", settings.points_expiry_interval_seconds, expire)

    return create_service_app(
        ServiceDefinition(
            name="points",
            description=(
                "The per-shop, per-customer points ledger: accrues, confirms, reverses, redeems, grants and deducts. "
                "Reads order and payment events and staff commands; publishes `points.events.v1` (keyed "
                "shop_id:customer_id). Every command is answered on `ops.replies.v1`; what can never be processed "
                "goes to the topic's `.dlq` with dlq.* headers."
            ),
            migrations=Path(__file__).parent / "migrations",
            subscriptions=[
                Subscription(
                    topics.ORDERS_EVENTS,
                    OrdersEvent,
                    {
                        OrderAccepted: handlers.on_order_accepted,
                        OrderCompleted: handlers.on_order_completed,
                        OrderCancelled: handlers.on_order_cancelled,
                        OrderEdited: handlers.on_order_edited,
                        OrderReturned: handlers.on_order_returned,
                    },
                    batched=True,
                    **handlers.BATCH_POINTS,
                ),
                Subscription(
                    topics.PAYMENTS_EVENTS,
                    PaymentsEvent,
                    {PaymentCaptured: handlers.on_payment_captured, PaymentReceived: handlers.on_payment_received},
                    batched=True,
                    **handlers.BATCH_POINTS,
                ),
                Subscription(
                    topics.POINTS_COMMANDS,
                    PointsCommand,
                    {
                        GrantPoints: commands.grant_points,
                        DeductPoints: commands.deduct_points,
                        BulkConfirmPoints: commands.bulk_confirm_points,
                        ExpirePoints: commands.expire_points,
                        SetPointsSettings: commands.set_points_settings,
                    },
                    on_invalid=reject_invalid_commands("points"),
                    description="Staff commands: grant, deduct, bulk confirm, expire, settings.",
                ),
            ],
            publishes={topics.POINTS_EVENTS: PointsEvent},
            http_routes=lambda runtime: staff_routes(runtime, settings.api_token.get_secret_value()),
            on_start=start_expiry,
        ),
        settings,
    )


def main() -> None:
    """Runs the points service."""
    run_service(create_app)
