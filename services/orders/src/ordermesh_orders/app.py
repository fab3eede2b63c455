"""Wires the orders service: its subscriptions, what it publishes, and its settings."""

from collections.abc import Mapping
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from faststream.asgi import AsgiFastStream
from ordermesh_contracts import (
    NotifyEvent,
    OrderRejected,
    OrdersCommand,
    OrdersEvent,
    PaymentsEvent,
    PointsEvent,
    ShippingEvent,
    ShopOrder,
    ShopOrderSubmitted,
    ShopUpdate,
    members_of,
    topics,
)
from ordermesh_servicekit.commands import reject_invalid_commands
from ordermesh_servicekit.consuming import Subscription
from ordermesh_servicekit.http import asgi_endpoint, staff_endpoint
from ordermesh_servicekit.outbox import OutgoingMessage
from ordermesh_servicekit.service import (
    ServiceDefinition,
    ServiceRuntime,
    create_service_app,
    run_service,
)
from ordermesh_servicekit.settings import ServiceSettings
from ordermesh_servicekit.tracing import ingress_span, producer_span
from pydantic import Field, SecretStr

from . import command_handlers, handlers, store
from .adapters import exports, ops_api, staff_api
from .ops_metrics import OrderGauges
from .adapters.shopify_webhook import parse_shops, shopify_orders_webhook


def reject_unreadable_order(raw: Mapping[str, Any] | None, reasons: list[str]) -> list[OutgoingMessage]:
    """An invalid shop order whose shop and order number can be read is rejected back to the shop."""
    if not raw:
        return []
    shop_id, external_order_no = raw.get("shop_id"), raw.get("external_order_no")
    if not (isinstance(shop_id, str) and shop_id and isinstance(external_order_no, str) and external_order_no):
        return []
    channel = raw.get("channel") if isinstance(raw.get("channel"), str) else None
    rejection = OrderRejected(
        shop_id=shop_id[:64], channel=channel, external_order_no=external_order_no[:64], reasons=reasons
    )
    return [OutgoingMessage.of(topics.SHOP_UPDATES, rejection, key=rejection.external_order_no)]


def definition(settings: "OrdersSettings") -> ServiceDefinition:
    """The orders service: intake from shops, and every other service's events as flags."""

    gauges: dict[str, OrderGauges] = {}

    def handled(contract_union: Any) -> dict:
        members = members_of(contract_union)
        return {model: h for model, h in handlers.FLAG_HANDLERS.items() if model in members}

    return ServiceDefinition(
        name="orders",
        description=(
            "The OMS core. Reads shop orders (`shop.orders.v1`, also fed by its Shopify webhook ingress), staff "
            "commands and every other service's events; keeps each order's stage, flags, tasks and history; "
            "publishes the order's life on `orders.events.v1` and acceptance, rejection and shipping updates for "
            "shops on `shop.updates.v1`. Every command is answered on `ops.replies.v1`; what can never be "
            "processed goes to the topic's `.dlq` with dlq.* headers."
        ),
        migrations=Path(__file__).parent / "migrations",
        subscriptions=[
            Subscription(
                topics.SHOP_ORDERS,
                ShopOrder,
                {ShopOrderSubmitted: handlers.on_shop_order_submitted},
                on_invalid=reject_unreadable_order,
                description="Shop orders to accept or reject.",
                batched=True,
                **handlers.INTAKE_BATCH,
            ),
            Subscription(
                topics.ORDERS_COMMANDS,
                OrdersCommand,
                command_handlers.COMMAND_HANDLERS,
                on_invalid=reject_invalid_commands("orders"),
                description="Staff commands: hold, release, stages, confirmations, tasks, watch list, bulk updates.",
            ),
            Subscription(topics.PAYMENTS_EVENTS, PaymentsEvent, handled(PaymentsEvent), batched=True, **handlers.BATCH_ORDERS),
            Subscription(topics.SHIPPING_EVENTS, ShippingEvent, handled(ShippingEvent), batched=True, **handlers.BATCH_ORDERS),
            Subscription(topics.POINTS_EVENTS, PointsEvent, handled(PointsEvent), batched=True, **handlers.BATCH_ORDERS),
            Subscription(topics.NOTIFY_EVENTS, NotifyEvent, handled(NotifyEvent), batched=True, **handlers.BATCH_ORDERS),
        ],
        publishes={topics.ORDERS_EVENTS: OrdersEvent, topics.SHOP_UPDATES: ShopUpdate, topics.SHOP_ORDERS: ShopOrder},
        http_routes=lambda runtime: [
            *staff_routes(runtime, settings.api_token.get_secret_value()),
            *ops_routes(runtime, settings.api_token.get_secret_value()),
            *shopify_routes(runtime, settings.shopify_shops.get_secret_value()),
        ],
        on_start=partial(start_gauges, settings, gauges),
        on_stop=partial(stop_gauges, gauges),
    )


async def start_gauges(settings: "OrdersSettings", gauges: dict, runtime: ServiceRuntime) -> None:
    """Starts refreshing the per-stage and not-progressing gauges."""
    order_gauges = OrderGauges(
        runtime.metrics.registry,
        lambda: runtime.pool,
        stuck_after=timedelta(seconds=settings.stuck_after_seconds),
        interval=settings.gauges_interval_seconds,
    )
    order_gauges.start()
    gauges["orders"] = order_gauges


async def stop_gauges(gauges: dict, runtime: ServiceRuntime) -> None:
    """Stops the gauges."""
    if order_gauges := gauges.pop("orders", None):
        await order_gauges.stop()


def ops_routes(runtime: ServiceRuntime, token: str) -> list:
    """Operations' JSON endpoints, behind the API token."""
    pool = lambda: runtime.pool  # noqa: E731 - the pool exists only once the service has started
    return [
        ("/api/orders/stuck", staff_endpoint(token, ops_api.stuck_orders(pool))),
        ("/api/orders/by-number", staff_endpoint(token, ops_api.find_by_number(pool))),
    ]


def staff_routes(runtime: ServiceRuntime, token: str) -> list:
    """The staff JSON endpoints, behind the API token."""
    pool = lambda: runtime.pool  # noqa: E731 - the pool exists only once the service has started
    return [
        ("/api/orders", staff_endpoint(token, staff_api.list_orders(pool))),
        ("/api/orders/order", staff_endpoint(token, staff_api.show_order(pool))),
        ("/api/orders/tasks", staff_endpoint(token, staff_api.open_tasks(pool))),
        ("/api/orders/shipping-fees", staff_endpoint(token, staff_api.show_shipping_fees(pool))),
        ("/api/orders/export.csv", staff_endpoint(token, exports.orders_csv(pool))),
    ]


def shopify_routes(runtime: ServiceRuntime, shops_config: str) -> list:
    """The Shopify orders/create webhook, publishing straight to the intake topic before answering."""

    async def publish(order: ShopOrderSubmitted) -> None:
        attributes = {"ordermesh.shop_id": order.shop_id, "ordermesh.shop_order_no": order.external_order_no}
        with ingress_span("POST /webhooks/shopify/orders-create", None, attributes):
            message = OutgoingMessage.of(topics.SHOP_ORDERS, order, key=order.external_order_no)
            with producer_span(message.topic, message.headers) as headers:
                await runtime.producer.send_and_wait(message.topic, message.value, key=message.key, headers=headers)

    async def seen(webhook_id: str) -> bool:
        async with runtime.pool.acquire() as conn:
            return await store.webhook_seen(conn, webhook_id)

    async def remember(webhook_id: str, domain: str) -> None:
        async with runtime.pool.acquire() as conn:
            await store.remember_webhook(conn, webhook_id, domain)

    webhook = shopify_orders_webhook(parse_shops(shops_config), publish, seen, remember)
    return [("/webhooks/shopify/orders-create", asgi_endpoint(webhook, methods=("POST",)))]


class OrdersSettings(ServiceSettings):
    """Settings of the orders service."""

    http_port: int = 8101
    shopify_shops: SecretStr = Field(
        default=SecretStr("{}"),
        description='Connected Shopify stores: {"<shop>.myshopify.com": {"shop_id": "...", "secret": "..."}}.',
    )
    stuck_after_seconds: int = Field(
        default=1800, ge=1, description="An unfinished order that has not moved for this long counts as not progressing (metric)."
    )
    gauges_interval_seconds: float = Field(default=15.0, gt=0, description="How often the per-stage gauges are read from the database.")


def create_app(settings: OrdersSettings | None = None) -> AsgiFastStream:
    """The orders service's app."""
    settings = settings or OrdersSettings()
    return create_service_app(definition(settings), settings)


def main() -> None:
    """Runs the orders service."""
    run_service(create_app)
