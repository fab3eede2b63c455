"""A demo shop that publishes orders, and a watcher that follows them to completion from the topics alone."""

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from uuid import UUID

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ordermesh_contracts import (
    AddToWatchList,
    Address,
    Channel,
    Charges,
    Customer,
    DeliveryGroup,
    OrderLine,
    Payment,
    PaymentMethod,
    ShopOrderSubmitted,
    order_id_for,
    topics,
)
from ordermesh_contracts.topics import ALL_TOPICS, dead_letter_topic

from .stack import DEMO_SKUS

DEMO_SHOP = "demo-shop"


def demo_order(number: int, *, shop_id: str = DEMO_SHOP, card_token: str = "tok_visa", rng: random.Random | None = None) -> ShopOrderSubmitted:
    """A realistic card-paid order of the demo shop: one or two lines, tax-inclusive yen prices."""
    rng = rng or random.Random(number)
    lines = [
        OrderLine(
            sku=sku,
            name=f"商品 {sku}",
            unit_price=rng.choice([550, 1080, 1980, 3300]),
            quantity=rng.randint(1, 3),
            tax_rate_percent=rng.choice([8, 10]),
        )
        for sku in rng.sample(DEMO_SKUS, rng.randint(1, 2))
    ]
    merchandise = sum(line.unit_price * line.quantity for line in lines)
    shipping_fee = 0 if merchandise >= 5000 else 550
    address = Address(
        name="山田 太郎", postal_code="100-0001", prefecture="東京都", city="千代田区", line1="千代田1-1", phone="03-1234-5678"
    )
    return ShopOrderSubmitted(
        shop_id=shop_id,
        channel=Channel.OWN_SITE,
        external_order_no=f"D{number:07d}-{uuid.uuid4().hex[:6]}",
        ordered_at=datetime.now(timezone.utc),
        currency="JPY",
        customer=Customer(
            customer_id=f"C{number % 500:05d}",
            name="山田 太郎",
            email=f"customer{number}@example.com",
            member_since=date(2024, 4, 1),
        ),
        billing_address=address,
        deliveries=[DeliveryGroup(address=address, carrier="yamato", lines=lines)],
        charges=Charges(shipping_fee=shipping_fee, total=merchandise + shipping_fee),
        payment=Payment(method=PaymentMethod.CARD, card_token=card_token),
    )


WATCHED_CUSTOMER = "C-WATCHED"
"""A demo customer the demo shop has watch-listed: their orders stop in review for staff."""


def mixed_demo_order(number: int) -> tuple[ShopOrderSubmitted, str]:
    """A demo order of a realistic mix, and what happens to it: most pay by card, some cash on delivery or convenience
    store; some stop for staff or the customer (bank transfer awaiting payment, an address whose postal code does not
    match, a watch-listed customer)."""
    order = demo_order(number)
    kind = number % 20
    if kind in (13, 14):
        return order.model_copy(update={"payment": Payment(method=PaymentMethod.CASH_ON_DELIVERY)}), "cash on delivery"
    if kind in (15, 16):
        return order.model_copy(update={"payment": Payment(method=PaymentMethod.BANK_TRANSFER)}), "awaits a bank transfer"
    if kind == 17:
        return order.model_copy(update={"payment": Payment(method=PaymentMethod.CONVENIENCE_STORE)}), "awaits payment at a store"
    if kind == 18:
        wrong = Address(name="山田 太郎", postal_code="530-0001", prefecture="東京都", city="千代田区", line1="千代田1-1")
        delivery = order.deliveries[0].model_copy(update={"address": wrong})
        return order.model_copy(update={"deliveries": [delivery]}), "address check for staff"
    if kind == 19:
        customer = order.customer.model_copy(update={"customer_id": WATCHED_CUSTOMER})
        return order.model_copy(update={"customer": customer}), "watch-listed customer"
    return order, "card"


COMPLETING_KINDS = ("card", "cash on delivery")


def completing(count: int, start_number: int = 1) -> int:
    """How many of `count` mixed demo orders complete without staff or the customer acting."""
    return sum(1 for n in range(start_number, start_number + count) if mixed_demo_order(n)[1] in COMPLETING_KINDS)


def watch_list_command() -> AddToWatchList:
    """Watch-lists the demo's watched customer (sent once when the demo starts)."""
    return AddToWatchList(shop_id=DEMO_SHOP, issued_by="demo", customer_id=WATCHED_CUSTOMER, reason="demo: chargebacks before")


@dataclass
class OrderTrack:
    """What the watcher knows of one order."""

    submitted_at: float
    accepted_at: float | None = None
    completed_at: float | None = None
    stage: str = "submitted"


@dataclass
class Watcher:
    """Follows every order through `orders.events.v1` (the demo's and any other shop's), rejections on
    `shop.updates.v1`, and every dead-letter topic."""

    bootstrap: str
    security: dict = field(default_factory=dict)
    """aiokafka TLS/SASL keyword arguments (`LocalStack.kafka_security`)."""
    tracks: dict[UUID, OrderTrack] = field(default_factory=dict)
    rejected: int = 0
    dead_letters: int = 0
    dead_letters_by_topic: Counter = field(default_factory=Counter)
    published: int = 0
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task | None = None

    async def start(self) -> None:
        """Subscribes from the end of each topic (only what happens from now on counts)."""
        self._consumer = AIOKafkaConsumer(
            topics.ORDERS_EVENTS,
            topics.SHOP_UPDATES,
            *[dead_letter_topic(t) for t in ALL_TOPICS],
            bootstrap_servers=self.bootstrap,
            **self.security,
            group_id=f"ordermesh-demo-watcher-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="latest",
            enable_auto_commit=False,
        )
        await self._consumer.start()
        while not self._consumer.assignment():
            await self._consumer.getmany(timeout_ms=200)
        for partition in self._consumer.assignment():
            await self._consumer.position(partition)
        self._task = asyncio.create_task(self._run())

    def expect(self, order: ShopOrderSubmitted) -> None:
        """Registers an order about to be published."""
        order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
        self.tracks[order_id] = OrderTrack(submitted_at=time.monotonic())
        self.published += 1

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=1000)
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    self._see(record, now)

    def _see(self, record, now: float) -> None:
        if record.topic.endswith(".dlq"):
            self.dead_letters += 1
            self.dead_letters_by_topic[record.topic.removesuffix(".dlq")] += 1
            return
        message = json.loads(record.value)
        kind = message.get("type")
        if kind == "OrderRejected":
            self.rejected += 1
            return
        order_id = message.get("order_id")
        if order_id and kind == "OrderAccepted" and UUID(order_id) not in self.tracks:
            self.tracks[UUID(order_id)] = OrderTrack(submitted_at=now)
        track = self.tracks.get(UUID(order_id)) if order_id else None
        if track is None:
            return
        if kind == "OrderAccepted" and track.accepted_at is None:
            track.accepted_at = now
            track.stage = "review"
        elif kind == "OrderProgressed":
            track.stage = message["to_stage"]
        elif kind == "OrderCompleted":
            track.completed_at = now
            track.stage = "completed"

    def stages(self) -> Counter[str]:
        """How many orders are at each stage."""
        return Counter(track.stage for track in self.tracks.values())

    def completed(self) -> int:
        """Orders completed so far."""
        return sum(1 for track in self.tracks.values() if track.completed_at is not None)

    async def stop(self) -> None:
        """Stops consuming."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer:
            await self._consumer.stop()


async def publish_orders(
    bootstrap: str,
    watcher: Watcher,
    count: int | None,
    rate_per_second: float,
    start_number: int = 1,
    *,
    mixed: bool = False,
    **security,
) -> int:
    """Publishes demo orders at a steady rate (forever when `count` is None); returns how many. `mixed` publishes the
    realistic mix of `mixed_demo_order` (the demo's customer is watch-listed first) instead of card orders only."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5, **security)
    await producer.start()
    published = 0
    started = time.monotonic()
    try:
        number = start_number
        if mixed:
            command = watch_list_command()
            await producer.send_and_wait(
                topics.ORDERS_COMMANDS, command.model_dump_json().encode(), key=command.kafka_key().encode(),
                headers=[("type", command.type.encode())],
            )
        while count is None or published < count:
            order = mixed_demo_order(number)[0] if mixed else demo_order(number)
            watcher.expect(order)
            await producer.send(
                topics.SHOP_ORDERS,
                order.model_dump_json().encode(),
                key=order.external_order_no.encode(),
                headers=[("type", b"ShopOrderSubmitted"), ("schema_version", b"1")],
            )
            published += 1
            number += 1
            delay = started + published / rate_per_second - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await producer.flush()
    finally:
        await producer.stop()
    return published
