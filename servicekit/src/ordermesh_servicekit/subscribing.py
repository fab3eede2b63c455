"""How a service reads Kafka: one consumer for all its topics, each batch split by topic, committed only when finished."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage

from .consuming import Consumer, Subscription
from .fencing import PartitionFence

if TYPE_CHECKING:
    from .service import ServiceRuntime


class _RebalanceCounter(ConsumerRebalanceListener):
    """Counts rebalances (each ends with an assignment), logs what this consumer was given, and has parking look for
    records other replicas parked on partitions that are now this one's."""

    def __init__(self, runtime: "ServiceRuntime", topics: Sequence[str]) -> None:
        self._runtime = runtime
        self._topics = topics

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if self._runtime.parking is not None:
            self._runtime.parking.assignment_changed()
        for topic in self._topics:
            self._runtime.metrics.rebalances(topic).inc()
        self._runtime.log.info("partitions assigned", partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))


def subscribe(broker: KafkaBroker, runtime: "ServiceRuntime", subscriptions: Sequence[Subscription]) -> None:
    """One Kafka consumer reads every topic of the service: a start or a crash is one group join, one rebalance.

    The consumer group is the service's (`ordermesh-<service>`), so committed offsets stay where they were.
    Each batch is split by topic and handed to that topic's `Consumer`; the batch is committed once every
    record of every topic has its outcome, and sought back as a whole if any topic's records have not.
    """
    settings = runtime.settings
    batch_lock = asyncio.Lock()
    consumers = {
        subscription.topic: Consumer(
            subscription,
            group_id=runtime.group_id,
            pool_provider=lambda: runtime.pool,
            metrics=runtime.metrics,
            retry_max_seconds=settings.startup_retry_max_seconds,
            concurrency=settings.consumer_concurrency,
            handler_attempts=settings.handler_attempts,
            dead_letter_max_bytes=settings.dead_letter_max_bytes,
            parking=runtime.parking,
            batch_lock=batch_lock,
        )
        for subscription in subscriptions
    }
    fence = PartitionFence(settings.database_url.get_secret_value(), settings.startup_retry_max_seconds)
    runtime.fences.append(fence)
    failures = 0

    async def consume(message: KafkaMessage) -> None:
        nonlocal failures
        records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
        by_topic: dict[str, list[Any]] = {}
        for record in records:
            by_topic.setdefault(record.topic, []).append(record)
        # Held until the offsets are committed: a replica given these partitions by a rebalance meanwhile waits.
        async with fence.holding((record.topic, record.partition) for record in records):
            topics_read = list(by_topic)
            results = await _process_all(consumers, by_topic)
            unfinished = [topic for topic, result in zip(topics_read, results) if isinstance(result, BaseException)]
            runtime.stalled_topics.difference_update(set(topics_read) - set(unfinished))
            if unfinished:
                failures += 1
                runtime.stalled_topics.update(unfinished)
                for topic, result in zip(topics_read, results):
                    if isinstance(result, BaseException):
                        runtime.metrics.batches_sought_back(topic).inc()
                        runtime.log.error(
                            "batch not finished; sought back to its first records", topic=topic, failures=failures,
                            exc_info=result,
                        )
                await message.nack()
                await asyncio.sleep(min(0.5 * 2 ** min(failures, 8), settings.startup_retry_max_seconds))
                return
            failures = 0
            try:
                await message.ack()
            except CommitFailedError:
                runtime.log.warning("offset commit failed during a rebalance; the batch will be redelivered")
        try:
            await runtime.parking.release()
        except Exception:  # noqa: BLE001 - parked messages stay parked; the next sweep tries them again
            runtime.log.exception("re-handling parked messages failed")

    consume.__name__ = f"consume_{runtime.definition.name}"
    topics_read = [subscription.topic for subscription in subscriptions]
    broker.subscriber(
        *topics_read,
        group_id=runtime.group_id,
        batch=True,
        max_records=settings.consumer_batch_size,
        batch_timeout_ms=50,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        group_instance_id=settings.instance_id or None,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        rebalance_timeout_ms=settings.kafka_rebalance_timeout_ms,
        max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
        listener=_RebalanceCounter(runtime, topics_read),
        parser=parse_without_headers,
        decoder=the_message_itself,
        title=f"{runtime.definition.name}:consumer",
        description=" ".join(
            subscription.description or f"{runtime.definition.name} consumes {subscription.topic}."
            for subscription in subscriptions
        ),
    )(consume)


async def _process_all(consumers: dict[str, Consumer], by_topic: dict[str, list[Any]]) -> list[Any]:
    """Each topic's records processed by its consumer, concurrently; what each returned or raised, in topic order."""
    if len(by_topic) == 1:
        # most batches hold one topic: no task for it
        ((topic, batch),) = by_topic.items()
        try:
            return [await consumers[topic].process(batch)]
        except Exception as error:  # noqa: BLE001 - reported by the caller, as gather(return_exceptions=True) does
            return [error]
    return await asyncio.gather(
        *(consumers[topic].process(batch) for topic, batch in by_topic.items()), return_exceptions=True
    )


class _WithoutHeaders:
    """A record as FastStream's parser sees it: the same, with no headers (it decodes them as UTF-8 and fails on nulls)."""

    headers: tuple[()] = ()

    def __init__(self, record: Any) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        return getattr(self._record, name)


async def parse_without_headers(records: Any, original_parser: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's batch parser, kept away from the records' headers; the message carries the records untouched.

    The records' bytes and headers are read by `Consumer` alone, which gives every record an outcome.
    """
    parsed = await original_parser(tuple(_WithoutHeaders(record) for record in records))
    parsed.raw_message = tuple(records)
    return parsed


async def the_message_itself(message: Any) -> Any:
    """The batch's message as the handler's body: no decoding by FastStream (it would raise on deep nesting or huge
    numbers before `Consumer` sees the record), and no dependency injection to hand the handler its message (FastStream
    resolves a `Context` argument in a worker thread, once per batch). The broker runs without `apply_types`."""
    return message
