"""Poison on every consumed topic of the running suite: each record dead-lettered with its reason, valid orders unharmed, no lag left."""

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ordermesh_contracts import order_id_for, topics
from ordermesh_devstack.demo import demo_order
from poison_corpus import Poison, poison_corpus
from support import eventually

CONSUMED = {
    # topic: (contract the corpus is built around, read strictly, consuming services)
    topics.SHOP_ORDERS: ("ShopOrderSubmitted", True, ("orders",)),
    topics.ORDERS_COMMANDS: ("CancelOrder", True, ("orders",)),
    topics.ORDERS_EVENTS: ("OrderAccepted", False, ("payments", "shipping", "points", "notify")),
    topics.PAYMENTS_EVENTS: ("PaymentReceived", False, ("orders", "points", "notify")),
    topics.PAYMENTS_CALLBACKS: ("ProviderPaymentReported", False, ("payments",)),
    topics.PAYMENTS_COMMANDS: ("RefundPayment", True, ("payments",)),
    topics.SHIPPING_EVENTS: ("ShipmentShipped", False, ("orders", "payments", "notify")),
    topics.SHIPPING_CALLBACKS: ("WarehouseShipmentReported", False, ("shipping",)),
    topics.SHIPPING_COMMANDS: ("ImportStock", True, ("shipping",)),
    topics.POINTS_EVENTS: ("PointsConfirmed", False, ("orders", "notify")),
    topics.POINTS_COMMANDS: ("GrantPoints", True, ("points",)),
    topics.NOTIFY_EVENTS: ("MailSent", False, ("orders",)),
    topics.NOTIFY_COMMANDS: ("ResendMail", True, ("notify",)),
}


@dataclass(frozen=True)
class Sent:
    topic: str
    partition: int
    offset: int
    poison: Poison


def letters_by_position(recorder) -> dict[tuple[str, int, int, str], dict[str, bytes]]:
    found = {}
    for message in recorder.messages:
        if message.topic.endswith(".dlq") and "dlq.original_offset" in message.headers:
            h = message.headers
            position = (h["dlq.original_topic"].decode(), int(h["dlq.original_partition"]), int(h["dlq.original_offset"]), h["dlq.consumer_group"].decode())
            found[position] = h
    return found


async def lag(bootstrap: str, groups_by_topic: dict[str, tuple[str, ...]]) -> dict[tuple[str, str], int]:
    """Uncommitted records per (group, topic): end offsets minus committed offsets."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await reader.start()
    try:
        result = {}
        described = await admin.describe_topics(list(groups_by_topic))
        partitions = {t["topic"]: [TopicPartition(t["topic"], p["partition"]) for p in t["partitions"]] for t in described}
        ends = await reader.end_offsets([tp for tps in partitions.values() for tp in tps])
        for group in {g for groups in groups_by_topic.values() for g in groups}:
            committed = await admin.list_consumer_group_offsets(f"ordermesh-{group}")
            for topic, groups in groups_by_topic.items():
                if group in groups:
                    result[(group, topic)] = sum(
                        ends[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0) for tp in partitions[topic]
                    )
        return result
    finally:
        await reader.stop()
        await admin.close()


async def test_poison_on_every_consumed_topic_is_dead_lettered_with_reasons_while_valid_orders_complete(stack, recorder):
    started = time.monotonic()
    orders = [demo_order(940_000 + n) for n in range(12)]
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", max_request_size=1_100_000, linger_ms=5)
    await producer.start()
    sent: list[Sent] = []
    try:
        corpus = [(topic, poison) for topic, (contract, strict, _) in CONSUMED.items() for poison in poison_corpus(contract, strict=strict)]
        every = len(corpus) // len(orders)
        # Sent in batches (the producer pipelines them), valid orders interleaved: one round trip per batch, not per record.
        deliveries, valid = [], []
        for n, (topic, poison) in enumerate(corpus):
            headers = list(poison.headers)
            deliveries.append((poison, topic, await producer.send(topic, poison.value, key=f"poison-{n}".encode(), headers=headers)))
            if n % every == 0 and n // every < len(orders):
                valid.append(await producer.send(topics.SHOP_ORDERS, orders[n // every].model_dump_json().encode(), key=f"valid-{n}".encode()))
        for poison, topic, delivery in deliveries:
            metadata = await delivery
            sent.append(Sent(topic, metadata.partition, metadata.offset, poison))
        await asyncio.gather(*valid)
    finally:
        await producer.stop()

    expected = {(s.topic, s.partition, s.offset, f"ordermesh-{g}"): s for s in sent for g in CONSUMED[s.topic][2]}

    def missing():
        found = letters_by_position(recorder)
        return sorted(f"{p[3]} {p[0]}: {s.poison.kind}" for p, s in expected.items() if p not in found)

    deadline = time.monotonic() + 150
    while missing() and time.monotonic() < deadline:
        await asyncio.sleep(1)
    assert missing() == []
    letters = letters_by_position(recorder)
    missing_reasons = [p for p in expected if not (letters[p].get("dlq.error_class") and letters[p].get("dlq.error_message"))]
    assert missing_reasons == []

    order_ids = {str(order_id_for(o.shop_id, o.channel.value, o.external_order_no)) for o in orders}

    def completed():
        return order_ids <= {m.json()["order_id"] for m in recorder.on(topics.ORDERS_EVENTS, type="OrderCompleted")}

    await eventually(completed, timeout=150, interval=1)
    groups_by_topic = {topic: groups for topic, (_, _, groups) in CONSUMED.items()}
    remaining = await eventually(lambda: _no_lag(stack.bootstrap, groups_by_topic), timeout=90, interval=1)

    per_topic = Counter(s.topic for s in sent)
    classes = Counter(letters[p]["dlq.error_class"].decode() for p in expected)
    sanitized = sum(1 for p in expected if "dlq.sanitized" in letters[p])
    print(
        f"\npoison run: {len(sent)} malformed records on {len(per_topic)} topics "
        f"({', '.join(f'{t}={n}' for t, n in sorted(per_topic.items()))}); "
        f"{len(expected)} expected dead letters (one per consuming group), {len(expected)} found = 100%, "
        f"{sanitized} sanitized; reasons {dict(sorted(classes.items()))}; "
        f"valid orders completed {len(order_ids)}/{len(orders)}; lag {remaining}; {time.monotonic() - started:.0f} s"
    )


async def _no_lag(bootstrap, groups_by_topic):
    per_group = await lag(bootstrap, groups_by_topic)
    return {k: v for k, v in per_group.items() if v} == {} and "0 everywhere"


async def test_a_poison_record_followed_at_once_by_a_valid_order_with_the_same_key_lets_the_order_through(stack, recorder):
    order = demo_order(941_001)
    lane = b"one-lane-941001"
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        poisons = [p for p in poison_corpus("ShopOrderSubmitted", strict=True) if p.kind in {"10k-deep nesting", "null value (tombstone)", "NUL bytes, nulls and non-UTF-8 in header values", "lone surrogate escaped in JSON"}]
        deliveries = [await producer.send(topics.SHOP_ORDERS, p.value, key=lane, headers=p.headers) for p in poisons]
        deliveries.append(await producer.send(topics.SHOP_ORDERS, order.model_dump_json().encode(), key=lane))
        positions = [(m.partition, m.offset) for m in [await d for d in deliveries]]
    finally:
        await producer.stop()
    assert len({partition for partition, _ in positions}) == 1
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)
    letters = letters_by_position(recorder)
    for partition, offset in positions[:-1]:
        assert letters[(topics.SHOP_ORDERS, partition, offset, "ordermesh-orders")]["dlq.error_class"]
