"""ordermesh's shared wire contracts (pydantic v2): messages, topics and money."""

from .commands import Command, CommandAccepted, CommandRejected, ItemResult, OpsReply
from .envelope import Message, OrderMessage, utc_now
from .money import MINOR_UNITS, Money, is_known_currency
from .notify import MailFailed, MailKind, MailNotApplicable, MailSent, NotifyEvent
from .orders import (
    Address,
    Channel,
    Charges,
    Customer,
    DeliveryGroup,
    Device,
    OrderAccepted,
    OrderCompleted,
    OrderLine,
    OrderProgressed,
    OrderRejected,
    OrdersEvent,
    Payment,
    PaymentMethod,
    ShopOrder,
    ShopOrderAccepted,
    ShopOrderShipped,
    ShopOrderSubmitted,
    ShopUpdate,
    Stage,
    order_id_for,
)
from .payments import (
    PaymentAuthorizationFailed,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentCaptureFailed,
    PaymentsEvent,
)
from .points import PointsAccrued, PointsConfirmed, PointsEvent
from .shipping import (
    ShipmentRequested,
    ShipmentShipped,
    ShippedLine,
    ShippingCallback,
    ShippingEvent,
    StockAllocated,
    WarehouseShipmentReported,
)
from . import topics

TOPIC_CONTRACTS = {
    topics.SHOP_ORDERS: ShopOrder,
    topics.SHOP_UPDATES: ShopUpdate,
    topics.ORDERS_EVENTS: OrdersEvent,
    topics.PAYMENTS_EVENTS: PaymentsEvent,
    topics.SHIPPING_EVENTS: ShippingEvent,
    topics.SHIPPING_CALLBACKS: ShippingCallback,
    topics.POINTS_EVENTS: PointsEvent,
    topics.NOTIFY_EVENTS: NotifyEvent,
    topics.OPS_REPLIES: OpsReply,
}
"""The union of contracts each topic carries (discriminated by `type`)."""

ALL_MESSAGE_TYPES: tuple[type[Message], ...] = (
    ShopOrderSubmitted,
    OrderAccepted,
    OrderRejected,
    ShopOrderAccepted,
    ShopOrderShipped,
    OrderProgressed,
    OrderCompleted,
    PaymentAuthorized,
    PaymentAuthorizationFailed,
    PaymentCaptured,
    PaymentCaptureFailed,
    StockAllocated,
    ShipmentRequested,
    ShipmentShipped,
    WarehouseShipmentReported,
    PointsAccrued,
    PointsConfirmed,
    MailSent,
    MailFailed,
    MailNotApplicable,
    CommandAccepted,
    CommandRejected,
)
"""Every contract, for golden-fixture tests and documentation."""



def members_of(topic_contract: object) -> tuple[type[Message], ...]:
    """The models of a topic contract such as `Annotated[A | B, Field(discriminator="type")]`."""
    from typing import get_args

    union = get_args(topic_contract)[0]
    return get_args(union) or (union,)


__all__ = [name for name in dir() if not name.startswith("_")]
