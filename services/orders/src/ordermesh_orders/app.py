"""Wires the orders service: its subscriptions, what it publishes, and its settings."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from faststream.asgi import AsgiFastStream

from ordermesh_contracts import (
    NotifyEvent,
    OrderRejected,
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
from ordermesh_servicekit.consuming import Subscription
from ordermesh_servicekit.outbox import OutgoingMessage
from ordermesh_servicekit.service import ServiceDefinition, create_service_app, run_service
from ordermesh_servicekit.settings import ServiceSettings

from . import handlers


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


def definition() -> ServiceDefinition:
    """The orders service: intake from shops, and every other service's events as flags."""

    def handled(contract_union: Any) -> dict:
        members = members_of(contract_union)
        return {model: h for model, h in handlers.FLAG_HANDLERS.items() if model in members}

    return ServiceDefinition(
        name="orders",
        migrations=Path(__file__).parent / "migrations",
        subscriptions=[
            Subscription(
                topics.SHOP_ORDERS,
                ShopOrder,
                {ShopOrderSubmitted: handlers.on_shop_order_submitted},
                on_invalid=reject_unreadable_order,
                description="Shop orders to accept or reject.",
            ),
            Subscription(topics.PAYMENTS_EVENTS, PaymentsEvent, handled(PaymentsEvent)),
            Subscription(topics.SHIPPING_EVENTS, ShippingEvent, handled(ShippingEvent)),
            Subscription(topics.POINTS_EVENTS, PointsEvent, handled(PointsEvent)),
            Subscription(topics.NOTIFY_EVENTS, NotifyEvent, handled(NotifyEvent)),
        ],
        publishes={topics.ORDERS_EVENTS: OrdersEvent, topics.SHOP_UPDATES: ShopUpdate},
    )


class OrdersSettings(ServiceSettings):
    """Settings of the orders service."""

    http_port: int = 8101


def create_app(settings: OrdersSettings | None = None) -> AsgiFastStream:
    """The orders service's app."""
    return create_service_app(definition(), settings or OrdersSettings())


def main() -> None:
    """Runs the orders service."""
    run_service(create_app)
