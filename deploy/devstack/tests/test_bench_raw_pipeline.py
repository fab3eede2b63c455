"""The raw pipeline `make bench` compares the suite with has the suite's shape."""

from collections import Counter

from ordermesh_contracts import topics
from ordermesh_devstack.raw_pipeline import CARD_ORDER, READS, consumed_per_order


def test_the_raw_card_order_publishes_what_a_card_order_publishes_in_the_suite_on_each_topic() -> None:
    assert Counter(step.topic for step in CARD_ORDER) == {
        topics.SHOP_ORDERS: 1, topics.ORDERS_EVENTS: 8, topics.SHOP_UPDATES: 2, topics.SHIPPING_EVENTS: 5,
        topics.SHIPPING_CALLBACKS: 2, topics.PAYMENTS_EVENTS: 2, topics.POINTS_EVENTS: 2, topics.NOTIFY_EVENTS: 4,
    }


def test_the_five_raw_services_consume_64_messages_per_order_as_the_suite_does() -> None:
    assert consumed_per_order() == 64


def test_every_raw_message_is_published_by_a_service_that_reads_the_message_causing_it() -> None:
    for step in CARD_ORDER[1:]:
        assert step.cause is not None and CARD_ORDER[step.cause].topic in READS[step.publisher]
