"""Wires the points service: subscriptions and outputs."""

from pathlib import Path

from faststream.asgi import AsgiFastStream

from ordermesh_contracts import OrderAccepted, OrdersEvent, PaymentCaptured, PaymentsEvent, PointsEvent, topics
from ordermesh_servicekit.consuming import Subscription
from ordermesh_servicekit.service import ServiceDefinition, create_service_app, run_service
from ordermesh_servicekit.settings import ServiceSettings

from . import handlers


class PointsSettings(ServiceSettings):
    """Settings of the points service."""

    http_port: int = 8104


def create_app(settings: PointsSettings | None = None) -> AsgiFastStream:
    """The points service's app."""
    return create_service_app(
        ServiceDefinition(
            name="points",
            migrations=Path(__file__).parent / "migrations",
            subscriptions=[
                Subscription(topics.ORDERS_EVENTS, OrdersEvent, {OrderAccepted: handlers.on_order_accepted}),
                Subscription(topics.PAYMENTS_EVENTS, PaymentsEvent, {PaymentCaptured: handlers.on_payment_captured}),
            ],
            publishes={topics.POINTS_EVENTS: PointsEvent},
        ),
        settings or PointsSettings(),
    )


def main() -> None:
    """Runs the points service."""
    run_service(create_app)
