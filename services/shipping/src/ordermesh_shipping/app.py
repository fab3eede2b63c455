"""Wires the shipping service: settings, the warehouse client, ingress routes, subscriptions and outputs."""

from pathlib import Path

import httpx
from faststream.asgi import AsgiFastStream
from pydantic import Field, SecretStr

from ordermesh_contracts import (
    OrderAccepted,
    OrderProgressed,
    OrdersEvent,
    ShippingCallback,
    ShippingEvent,
    WarehouseShipmentReported,
    topics,
)
from ordermesh_servicekit.consuming import Subscription
from ordermesh_servicekit.http import asgi_endpoint
from ordermesh_servicekit.outbox import OutgoingMessage
from ordermesh_servicekit.service import ServiceDefinition, ServiceRuntime, create_service_app, run_service
from ordermesh_servicekit.settings import ServiceSettings

from . import store
from .adapters.ingress import stock_levels, warehouse_callback
from .adapters.warehouse import SandboxWarehouse
from .handlers import ShippingHandlers


class ShippingSettings(ServiceSettings):
    """Settings of the shipping service."""

    http_port: int = 8103
    warehouse_url: str = Field(default="http://127.0.0.1:8202", description="Base URL of the warehouse API.")
    public_url: str = Field(default="http://127.0.0.1:8103", description="Where the warehouse reaches this service.")
    warehouse_callback_secret: SecretStr = Field(default=SecretStr(""), description="HMAC secret of warehouse callbacks.")
    admin_token: SecretStr = Field(default=SecretStr(""), description="Bearer token for the stock endpoint.")


def create_app(settings: ShippingSettings | None = None) -> AsgiFastStream:
    """The shipping service's app."""
    settings = settings or ShippingSettings()
    client = httpx.AsyncClient(base_url=settings.warehouse_url, timeout=10)
    handlers = ShippingHandlers(SandboxWarehouse(client, f"{settings.public_url}/callbacks/warehouse"))

    def routes(runtime: ServiceRuntime) -> list:
        async def publish(message: OutgoingMessage) -> None:
            await runtime.producer.send_and_wait(message.topic, message.value, key=message.key, headers=message.headers)

        async def set_stock(levels: list[tuple[str, str, int]]) -> None:
            async with runtime.pool.acquire() as conn:
                await store.set_stock(conn, levels)

        return [
            ("/callbacks/warehouse", asgi_endpoint(warehouse_callback(settings.warehouse_callback_secret.get_secret_value(), publish))),
            ("/admin/stock", asgi_endpoint(stock_levels(settings.admin_token.get_secret_value(), set_stock))),
        ]

    async def close_client(_runtime: ServiceRuntime) -> None:
        await client.aclose()

    return create_service_app(
        ServiceDefinition(
            name="shipping",
            migrations=Path(__file__).parent / "migrations",
            subscriptions=[
                Subscription(
                    topics.ORDERS_EVENTS,
                    OrdersEvent,
                    {OrderAccepted: handlers.on_order_accepted, OrderProgressed: handlers.on_order_progressed},
                ),
                Subscription(
                    topics.SHIPPING_CALLBACKS,
                    ShippingCallback,
                    {WarehouseShipmentReported: handlers.on_warehouse_shipment_reported},
                ),
            ],
            publishes={topics.SHIPPING_EVENTS: ShippingEvent},
            http_routes=routes,
            on_stop=close_client,
        ),
        settings,
    )


def main() -> None:
    """Runs the shipping service."""
    run_service(create_app)
