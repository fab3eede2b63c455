"""Consumer lag and dead-letter depth read from Kafka: for staff tools, and as gauges each service exports for its group."""

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Gauge


@dataclass(frozen=True)
class PartitionLag:
    """How far a consumer group is behind on one partition."""

    group: str
    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        """Records not yet committed by the group (every record when it has committed nothing)."""
        return max(self.end - (self.committed or 0), 0)

    def as_json(self) -> dict:
        """For read APIs and --json."""
        return {
            "group": self.group, "topic": self.topic, "partition": self.partition,
            "committed": self.committed, "end": self.end, "lag": self.lag,
        }


async def group_lag(admin: AIOKafkaAdminClient, reader: AIOKafkaConsumer, group: str) -> list[PartitionLag]:
    """The group's lag on every partition it has committed offsets for (started clients; `reader` has no group)."""
    committed = await admin.list_consumer_group_offsets(group)
    partitions = sorted(committed, key=lambda tp: (tp.topic, tp.partition))
    if not partitions:
        return []
    ends = await reader.end_offsets(partitions)
    return [
        PartitionLag(group, tp.topic, tp.partition, committed[tp].offset if committed[tp].offset >= 0 else None, ends[tp])
        for tp in partitions
    ]


async def topic_depth(reader: AIOKafkaConsumer, partitions: Iterable[TopicPartition]) -> dict[str, int]:
    """Records currently kept per topic (end minus beginning offsets, summed over partitions)."""
    partitions = list(partitions)
    if not partitions:
        return {}
    ends = await reader.end_offsets(partitions)
    starts = await reader.beginning_offsets(partitions)
    depth: dict[str, int] = {}
    for tp in partitions:
        depth[tp.topic] = depth.get(tp.topic, 0) + ends[tp] - starts[tp]
    return depth


async def partitions_of(admin: AIOKafkaAdminClient, topics: Iterable[str]) -> list[TopicPartition]:
    """The partitions of those topics that exist."""
    wanted = list(dict.fromkeys(topics))
    if not wanted:
        return []
    return [
        TopicPartition(described["topic"], p["partition"])
        for described in await admin.describe_topics(wanted)
        if described["error_code"] == 0
        for p in described["partitions"]
    ]


class KafkaGauges:
    """Exports `ordermesh_consumer_lag{group,topic,partition}` for this service's group and
    `ordermesh_dead_letters{topic}` (records kept on the dead-letter topics of what it consumes), every `interval` s."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        kafka_options: dict[str, Any],
        group: str,
        dead_letter_topics: list[str],
        interval: float,
    ) -> None:
        self._kafka_options = kafka_options
        self._group = group
        self._dead_letter_topics = dead_letter_topics
        self._interval = interval
        self._task: asyncio.Task | None = None
        self._log = structlog.get_logger("kafka_gauges")
        self.lag = Gauge(
            "ordermesh_consumer_lag", "Records of a partition not yet committed by the consumer group.",
            ["group", "topic", "partition"], registry=registry,
        )
        self.dead_letters = Gauge(
            "ordermesh_dead_letters", "Records kept on a dead-letter topic (by original topic).", ["topic"], registry=registry
        )
        for topic in dead_letter_topics:
            self.dead_letters.labels(topic.removesuffix(".dlq")).set(0)

    def start(self) -> None:
        """Reads lag and depth in the background until stopped."""
        self._task = asyncio.create_task(self._run(), name="kafka-gauges")

    async def stop(self) -> None:
        """Stops reading."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def refresh(self, admin: AIOKafkaAdminClient, reader: AIOKafkaConsumer) -> None:
        """Reads once with started clients."""
        for row in await group_lag(admin, reader, self._group):
            self.lag.labels(row.group, row.topic, str(row.partition)).set(row.lag)
        depth = await topic_depth(reader, await partitions_of(admin, self._dead_letter_topics))
        for topic, count in depth.items():
            self.dead_letters.labels(topic.removesuffix(".dlq")).set(count)

    async def _run(self) -> None:
        while True:
            admin = AIOKafkaAdminClient(**self._kafka_options, request_timeout_ms=10000)
            reader = AIOKafkaConsumer(**self._kafka_options, group_id=None, enable_auto_commit=False)
            try:
                await admin.start()
                await reader.start()
                while True:
                    await self.refresh(admin, reader)
                    await asyncio.sleep(self._interval)
            except (KafkaError, OSError) as error:
                self._log.warning("lag not read, retrying", error=type(error).__name__)
                await asyncio.sleep(self._interval)
            finally:
                await reader.stop()
                await admin.close()
