"""Tests for the local single-node Kafka broker run from the Kafka jars."""

import asyncio
import os
import uuid

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from ordermesh_devstack.kafka import LocalKafka, ensure_topics


def _processes_using(path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(path) in part for part in proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _process_group(pgid: int) -> list[int]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc.pid)
        except ProcessLookupError:
            pass
    return members


async def test_a_message_produced_to_a_six_partition_topic_is_consumed_and_stop_leaves_no_java_process(tmp_path):
    data_dir = tmp_path / "kafka"
    kafka = LocalKafka(data_dir)
    bootstrap = await asyncio.to_thread(kafka.start)
    pid = kafka.pid
    assert pid is not None and bootstrap.startswith("127.0.0.1:")
    topic = f"test.orders.{uuid.uuid4().hex[:8]}"
    try:
        await ensure_topics(bootstrap, [topic], partitions=6)
        await ensure_topics(bootstrap, [topic, topic], partitions=6)  # idempotent

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            [description] = await admin.describe_topics([topic])
        finally:
            await admin.close()
        assert description["error_code"] == 0
        assert len(description["partitions"]) == 6

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"order-placed", key=b"order-1")
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id="test-group",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            message = await asyncio.wait_for(consumer.getone(), 30)
            await consumer.commit()
        finally:
            await consumer.stop()
        assert (message.key, message.value) == (b"order-1", b"order-placed")
    finally:
        await asyncio.to_thread(kafka.stop)

    assert kafka.pid is None
    assert not psutil.pid_exists(pid)
    assert _process_group(pid) == []
    assert _processes_using(data_dir) == []
    kafka.stop()  # idempotent


async def test_a_broker_restarted_on_the_same_data_dir_keeps_its_topics(tmp_path):
    topic = "test.restart"
    with LocalKafka(tmp_path / "kafka", partitions=3) as kafka:
        assert kafka.bootstrap is not None
        await ensure_topics(kafka.bootstrap, [topic], partitions=3)
    with LocalKafka(tmp_path / "kafka", partitions=3) as kafka:
        assert kafka.bootstrap is not None
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        try:
            assert topic in await admin.list_topics()
        finally:
            await admin.close()
    assert _processes_using(tmp_path / "kafka") == []
