"""Wires the payments service: settings, the gateway client, subscriptions and outputs."""

from pathlib import Path

import httpx
from faststream.asgi import AsgiFastStream
from pydantic import Field

from ordermesh_contracts import OrderAccepted, OrdersEvent, PaymentsEvent, ShipmentShipped, ShippingEvent, topics
from ordermesh_servicekit.consuming import Subscription
from ordermesh_servicekit.service import ServiceDefinition, ServiceRuntime, create_service_app, run_service
from ordermesh_servicekit.settings import ServiceSettings

from .adapters.gateway import SandboxGateway
from .handlers import PaymentHandlers


class PaymentsSettings(ServiceSettings):
    """Settings of the payments service."""

    http_port: int = 8102
    gateway_url: str = Field(default="http://127.0.0.1:8201", description="Base URL of the card gateway.")
    gateway_timeout_seconds: float = Field(default=10.0, description="Longest wait for one gateway call.")


def create_app(settings: PaymentsSettings | None = None) -> AsgiFastStream:
    """The payments service's app."""
    settings = settings or PaymentsSettings()
    client = httpx.AsyncClient(base_url=settings.gateway_url, timeout=settings.gateway_timeout_seconds)
    handlers = PaymentHandlers(SandboxGateway(client))

    async def close_client(_runtime: ServiceRuntime) -> None:
        await client.aclose()

    return create_service_app(
        ServiceDefinition(
            name="payments",
            migrations=Path(__file__).parent / "migrations",
            subscriptions=[
                Subscription(topics.ORDERS_EVENTS, OrdersEvent, {OrderAccepted: handlers.on_order_accepted}),
                Subscription(topics.SHIPPING_EVENTS, ShippingEvent, {ShipmentShipped: handlers.on_shipment_shipped}),
            ],
            publishes={topics.PAYMENTS_EVENTS: PaymentsEvent},
            on_stop=close_client,
        ),
        settings,
    )


def main() -> None:
    """Runs the payments service."""
    run_service(create_app)
