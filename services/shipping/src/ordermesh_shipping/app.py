"""Wires the shipping service: settings, the warehouse client, ingress routes, subscriptions and outputs."""

from pathlib import Path
from uuid import UUID

from faststream.asgi import AsgiFastStream
from pydantic import Field, SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ordermesh_contracts import (
    ChangeDeliveryMethod,
    DeliveryChecksConfirmed,
    OrderReturned,
    ExportLabels,
    ImportStock,
    ImportTrackingCsv,
    OrderAccepted,
    OrderCancelled,
    OrderEdited,
    OrderProgressed,
    OrdersEvent,
    ShippingCallback,
    ShippingCommand,
    SetShopShipping,
    ShippingEvent,
    Stage,
    WarehouseDeliveryReported,
    WarehouseShipmentReported,
    topics,
)
from ordermesh_servicekit.commands import reject_invalid_commands
from ordermesh_servicekit.consuming import Subscription
from ordermesh_servicekit.http import asgi_endpoint, staff_endpoint
from ordermesh_servicekit.http_input import query_text, query_uuid
from ordermesh_servicekit.outside import OutsideCalls
from ordermesh_servicekit.service import ServiceDefinition, ServiceRuntime, create_service_app, run_service
from ordermesh_servicekit.settings import ServiceSettings

from . import store, store_shipments, store_stock
from .adapters.ingress import ShipmentOrigins, stock_levels, warehouse_callback
from ordermesh_servicekit.json_http import JsonHttp
from .adapters.warehouse import SandboxWarehouse
from .commands import ShippingCommands
from .handlers import BATCH_ORDERS, BATCH_SHIPMENTS, ShippingHandlers, calls_the_warehouse


class ShippingSettings(ServiceSettings):
    """Settings of the shipping service."""

    http_port: int = 8103
    warehouse_url: str = Field(default="http://127.0.0.1:8202", description="Base URL of the warehouse API.")
    public_url: str = Field(default="http://127.0.0.1:8103", description="Where the warehouse reaches this service.")
    warehouse_callback_secret: SecretStr = Field(default=SecretStr(""), description="HMAC secret of warehouse callbacks.")
    admin_token: SecretStr = Field(default=SecretStr(""), description="Bearer token for the stock endpoint.")
    warehouse_timeout_seconds: float = Field(default=10, gt=0, description="How long a warehouse request may take.")
    warehouse_max_attempts: int = Field(
        default=5, ge=1, description="Tries of a shipment request before ShipmentRequestFailed (a task for staff)."
    )


def create_app(settings: ShippingSettings | None = None) -> AsgiFastStream:
    """The shipping service's app."""
    settings = settings or ShippingSettings()
    outside_calls = OutsideCalls()
    client = JsonHttp(
        settings.warehouse_url, calls=outside_calls, target="warehouse", timeout_seconds=settings.warehouse_timeout_seconds
    )
    origins = ShipmentOrigins()
    handlers = ShippingHandlers(
        SandboxWarehouse(client, f"{settings.public_url}/callbacks/warehouse"),
        max_request_attempts=settings.warehouse_max_attempts, origins=origins,
    )
    commands = ShippingCommands()

    def routes(runtime: ServiceRuntime) -> list:
        async def set_stock(levels: list[tuple[str, str, int]]) -> None:
            async with runtime.pool.acquire() as conn:
                await store_stock.set_stock(conn, levels)

        async def stock(request: Request) -> Response:
            sku = query_text(request, "sku")
            async with runtime.pool.acquire() as conn:
                rows = await store_stock.stock_levels(conn, sku)
            return JSONResponse([dict(row) for row in rows])

        async def shipments(request: Request) -> Response:
            order_id = query_uuid(request, "order_id")
            async with runtime.pool.acquire() as conn:
                rows = await store_shipments.shipments_of_order(conn, order_id)
            return JSONResponse([{k: _json_value(v) for k, v in row.items()} for row in rows])

        async def allocations(request: Request) -> Response:
            order_id, sku = query_uuid(request, "order_id", required=False), query_text(request, "sku")
            async with runtime.pool.acquire() as conn:
                rows = await store_stock.allocations(conn, order_id, sku)
            return JSONResponse([{k: _json_value(v) for k, v in row.items()} for row in rows])

        async def calendar(request: Request) -> Response:
            shop_id = query_text(request, "shop_id", required=True)
            async with runtime.pool.acquire() as conn:
                found = await store.shop_calendar(conn, shop_id)
            return JSONResponse({"shop_id": shop_id, **found.as_settings()})

        token = settings.api_token.get_secret_value()
        callback = warehouse_callback(settings.warehouse_callback_secret.get_secret_value(), lambda: runtime.pool, origins)
        return [
            ("/callbacks/warehouse", asgi_endpoint(callback, methods=("POST",))),
            ("/admin/stock", staff_endpoint(settings.admin_token.get_secret_value(), stock_levels(set_stock), methods=("PUT",))),
            ("/api/shipping/stock", staff_endpoint(token, stock)),
            ("/api/shipping/shipments", staff_endpoint(token, shipments)),
            ("/api/shipping/allocations", staff_endpoint(token, allocations)),
            ("/api/shipping/calendar", staff_endpoint(token, calendar)),
        ]

    async def close_client(_runtime: ServiceRuntime) -> None:
        await client.aclose()

    return create_service_app(
        ServiceDefinition(
            name="shipping",
            description=(
                "Stock, allocation, delivery-date and carrier label checks, shipment requests to the warehouse, B2 "
                "Cloud labels and tracking. Reads order and payment events, carrier/warehouse reports "
                "(`shipping.callbacks.v1`, written by its own HTTP ingress) and staff commands; publishes "
                "`shipping.events.v1`. Every command is answered on `ops.replies.v1`; what can never be processed "
                "goes to the topic's `.dlq` with dlq.* headers."
            ),
            collectors=outside_calls.collectors(),
            migrations=Path(__file__).parent / "migrations",
            subscriptions=[
                Subscription(
                    topics.ORDERS_EVENTS,
                    OrdersEvent,
                    {
                        OrderAccepted: handlers.on_order_accepted,
                        OrderProgressed: handlers.on_order_progressed,
                        OrderCancelled: handlers.on_order_cancelled,
                        OrderEdited: handlers.on_order_edited,
                        DeliveryChecksConfirmed: handlers.on_checks_confirmed,
                        OrderReturned: handlers.on_order_returned,
                    },
                    batched=True,
                    alone=calls_the_warehouse,
                    only={OrderProgressed: {Stage.AWAITING_ALLOCATION, Stage.READY_TO_SHIP}},
                    **BATCH_ORDERS,
                ),
                Subscription(
                    topics.SHIPPING_CALLBACKS,
                    ShippingCallback,
                    {
                        WarehouseShipmentReported: handlers.on_warehouse_shipment_reported,
                        WarehouseDeliveryReported: handlers.on_delivery_reported,
                    },
                    batched=True,
                    **BATCH_SHIPMENTS,
                ),
                Subscription(
                    topics.SHIPPING_COMMANDS,
                    ShippingCommand,
                    {
                        ImportStock: commands.import_stock,
                        ExportLabels: commands.export_labels,
                        ImportTrackingCsv: commands.import_tracking_csv,
                        SetShopShipping: commands.set_shop_shipping,
                        ChangeDeliveryMethod: handlers.on_change_delivery_method,
                    },
                    on_invalid=reject_invalid_commands("shipping"),
                ),
            ],
            publishes={topics.SHIPPING_EVENTS: ShippingEvent, topics.SHIPPING_CALLBACKS: ShippingCallback},
            http_routes=routes,
            on_stop=close_client,
        ),
        settings,
    )


def _json_value(value: object) -> object:
    if isinstance(value, UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def main() -> None:
    """Runs the shipping service."""
    run_service(create_app)
