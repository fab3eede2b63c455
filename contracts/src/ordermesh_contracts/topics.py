"""Kafka topic names of ordermesh, versioned; each has a `.dlq` companion."""

SHOP_ORDERS = "shop.orders.v1"
SHOP_UPDATES = "shop.updates.v1"
ORDERS_COMMANDS = "orders.commands.v1"
ORDERS_EVENTS = "orders.events.v1"
PAYMENTS_EVENTS = "payments.events.v1"
PAYMENTS_CALLBACKS = "payments.callbacks.v1"
SHIPPING_EVENTS = "shipping.events.v1"
SHIPPING_CALLBACKS = "shipping.callbacks.v1"
POINTS_EVENTS = "points.events.v1"
NOTIFY_EVENTS = "notify.events.v1"
PAYMENTS_COMMANDS = "payments.commands.v1"
SHIPPING_COMMANDS = "shipping.commands.v1"
POINTS_COMMANDS = "points.commands.v1"
NOTIFY_COMMANDS = "notify.commands.v1"
OPS_REPLIES = "ops.replies.v1"

ALL_TOPICS: tuple[str, ...] = (
    SHOP_ORDERS,
    SHOP_UPDATES,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    PAYMENTS_CALLBACKS,
    SHIPPING_EVENTS,
    SHIPPING_CALLBACKS,
    POINTS_EVENTS,
    NOTIFY_EVENTS,
    PAYMENTS_COMMANDS,
    SHIPPING_COMMANDS,
    POINTS_COMMANDS,
    NOTIFY_COMMANDS,
    OPS_REPLIES,
)


def dead_letter_topic(topic: str) -> str:
    """The dead-letter topic that receives what consumers of `topic` could not process."""
    return f"{topic}.dlq"


def all_topics_with_dead_letters() -> list[str]:
    """Every topic the system uses, each followed by its dead-letter topic."""
    return [name for topic in ALL_TOPICS for name in (topic, dead_letter_topic(topic))]
