"""How a service reads Kafka: one consumer for all its topics, each batch split by topic, committed only when finished."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage

from .consuming import Consumer, Subscription
from .fencing import PartitionFence

if TYPE_CHECKING:
    from .service import ServiceRuntime


IDLE_SECONDS = 0.1
"""A consumer that took no batch for this long commits what it processed and gives back the fences it kept."""


class BetweenBatches:
    """What a busy consumer leaves undone between batches: committing its offsets and giving back its partition fences.

    While batches follow each other, the processed offsets are committed at most once per `commit_interval` and the
    fences are kept (`PartitionFence.keep`), so a batch costs no request to Kafka's group coordinator and no statement
    on the fence's connection. Once the consumer has taken no batch for `IDLE_SECONDS`, loses its partitions or stops,
    it commits what it processed and gives the fences back. Offsets processed but not yet committed when a replica
    crashes are delivered again, and the inbox (or the dead letter written for that position) makes them duplicates.
    """

    def __init__(self, fence: PartitionFence, commit_interval: float, runtime: "ServiceRuntime") -> None:
        self._fence = fence
        self._commit_interval = commit_interval
        self._runtime = runtime
        self._lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._processed: dict[TopicPartition, int] = {}
        self._last_commit = time.monotonic()
        self._in_batch = False
        self._revoked = False
        self._idle: asyncio.TimerHandle | None = None
        self._idle_task: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def batch(self, consumer: AIOKafkaConsumer) -> AsyncIterator[None]:
        """Runs one batch; afterwards commits if the interval has passed, and arms the idle timer."""
        self._consumer = consumer
        if self._idle is not None:
            self._idle.cancel()
        async with self._lock:
            self._in_batch, self._revoked = True, False
            try:
                yield
            finally:
                self._in_batch = False
                if self._revoked:  # partitions were revoked during the batch: nothing of it may stay held
                    await self._settle()
        if time.monotonic() - self._last_commit >= self._commit_interval:
            await self._commit()
        self._idle = asyncio.get_running_loop().call_later(IDLE_SECONDS, self._start_idle_work)

    def finished(self, records: Iterable[Any]) -> None:
        """Notes a batch whose every record has its outcome: its offsets are to be committed, its fences may be kept."""
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            self._processed[partition] = max(self._processed.get(partition, 0), record.offset + 1)
        if not self._revoked:
            self._fence.keep()

    async def give_back_kept_fences(self) -> None:
        """Gives the kept fences back now (parking takes a partition's fence itself to re-handle what is parked)."""
        await self._fence.release_kept()

    async def revoked(self) -> None:
        """Partitions are being taken away: commits and gives everything back, at once if no batch runs, else at its end."""
        if self._in_batch:
            self._revoked = True
            return
        async with self._lock:
            await self._settle()

    async def stop(self, timeout: float = 5.0) -> None:
        """Commits and gives back what is left before the consumer stops (a batch still running is waited for, briefly)."""
        if self._idle is not None:
            self._idle.cancel()
        try:
            async with asyncio.timeout(timeout):
                async with self._lock:
                    await self._settle()
        except TimeoutError:
            self._runtime.log.warning("a batch was still running at stop; its offsets will be delivered again")

    def _start_idle_work(self) -> None:
        self._idle_task = asyncio.create_task(self._when_idle())

    async def _when_idle(self) -> None:
        async with self._lock:
            if not self._in_batch:
                await self._settle()

    async def _settle(self) -> None:
        await self._commit()
        self._processed.clear()
        await self._fence.release_kept()

    async def _commit(self) -> None:
        self._last_commit = time.monotonic()
        consumer, processed = self._consumer, self._processed
        if consumer is None or not processed:
            return
        assigned = consumer.assignment()
        offsets = {partition: offset for partition, offset in processed.items() if partition in assigned}
        self._processed = {}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (KafkaError, IllegalStateError) as error:
            self._runtime.log.warning(
                "offset commit failed; records since the last commit will be delivered again", error=type(error).__name__
            )
            for partition, offset in offsets.items():
                self._processed[partition] = max(self._processed.get(partition, 0), offset)
        else:
            self._runtime.metrics.offset_commits.inc()


class _RebalanceListener(ConsumerRebalanceListener):
    """Commits and gives back fences before partitions go (`BetweenBatches.revoked`); counts rebalances (each ends
    with an assignment), logs what this consumer was given, and has parking look for records other replicas parked on
    partitions that are now this one's."""

    def __init__(self, runtime: "ServiceRuntime", topics: Sequence[str], between_batches: BetweenBatches) -> None:
        self._runtime = runtime
        self._topics = topics
        self._between_batches = between_batches

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._between_batches.revoked()

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
    between_batches = BetweenBatches(fence, settings.kafka_commit_interval_ms / 1000, runtime)
    runtime.between_batches.append(between_batches)
    failures = 0

    async def consume(message: KafkaMessage) -> None:
        nonlocal failures
        records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
        by_topic: dict[str, list[Any]] = {}
        for record in records:
            by_topic.setdefault(record.topic, []).append(record)
        runtime.metrics.consumer_batches.inc()
        async with between_batches.batch(message.consumer):
            # Held until the batch's records have their outcomes: a replica given these partitions by a rebalance
            # meanwhile waits (and then finds them in the inbox).
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
                between_batches.finished(records)
            if runtime.parking.has_releases_pending():
                await between_batches.give_back_kept_fences()
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
        listener=_RebalanceListener(runtime, topics_read, between_batches),
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
