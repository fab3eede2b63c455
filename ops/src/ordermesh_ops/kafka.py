"""Kafka clients of the staff tools, built in one place from the connection (TLS/SASL included), and reading topics
from the beginning without a consumer group."""

from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from .client import Connection


def admin_client(connection: Connection) -> AIOKafkaAdminClient:
    """An admin client (not started)."""
    return AIOKafkaAdminClient(bootstrap_servers=connection.bootstrap, request_timeout_ms=30000, **connection.kafka_security)


def producer(connection: Connection) -> AIOKafkaProducer:
    """An idempotent producer waiting for every replica (not started)."""
    return AIOKafkaProducer(bootstrap_servers=connection.bootstrap, acks="all", enable_idempotence=True, **connection.kafka_security)


def reader(connection: Connection) -> AIOKafkaConsumer:
    """A consumer without a group: it commits nothing and is assigned partitions by hand (not started)."""
    return AIOKafkaConsumer(bootstrap_servers=connection.bootstrap, enable_auto_commit=False, group_id=None, **connection.kafka_security)


async def topic_partitions(admin: AIOKafkaAdminClient, names: Iterable[str]) -> list[TopicPartition]:
    """The partitions of those named topics that exist."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []
    return [
        TopicPartition(described["topic"], partition["partition"])
        for described in await admin.describe_topics(wanted)
        if described["error_code"] == 0
        for partition in sorted(described["partitions"], key=lambda p: p["partition"])
    ]


async def read_topics_to_end(connection: Connection, topic_names: Iterable[str]) -> list[Any]:
    """Every record of the named topics (those that exist), from the beginning to the end they have now."""
    admin = admin_client(connection)
    await admin.start()
    try:
        partitions = await topic_partitions(admin, topic_names)
    finally:
        await admin.close()
    if not partitions:
        return []
    consumer = reader(connection)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        records: list[Any] = []
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, batch in batches.items():
                records.extend(r for r in batch if r.offset < ends[tp])
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        return records
    finally:
        await consumer.stop()
