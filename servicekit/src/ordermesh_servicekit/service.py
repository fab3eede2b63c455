"""Builds a service's FastStream app from its definition and runs it: the one place where wiring happens."""

import asyncio
import gc
import logging
import sys
from functools import partial
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import asyncpg
import structlog
import uvicorn
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.protocol.metadata import MetadataRequest
from faststream import AckPolicy
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from ordermesh_contracts.topics import dead_letter_topic

from .consuming import Subscription
from .database import backoff_delays, create_pool_when_ready, keep_session, prime_codecs
from .fencing import PartitionFence
from .subscribing import BetweenBatches, subscribe
from .http import ASGIApp, health_routes
from .http_input import limit_body
from .http_server import BoundedHttpToolsProtocol
from .jobs import Job, run_every
from .kafka_clients import KafkaAccessRefused, RememberingPartitioner, aiokafka_options, check_access, faststream_security
from .lag import KafkaGauges
from .tracing import configure_tracing
from .logging import configure_logging
from .metrics import Metrics
from .migrations import migrate_service
from .outbox import OutboxRelay, outbox_backlog
from .outbox_failed import outbox_failed_routes, pending_count
from .parking import Parking
from .settings import ServiceSettings


@dataclass
class ServiceDefinition:
    """Everything that makes one service: its name, tables, subscriptions, documented outputs and routes."""

    name: str
    migrations: Path
    subscriptions: Sequence[Subscription]
    description: str = ""
    """What the service does, for its AsyncAPI document."""
    publishes: dict[str, Any] = field(default_factory=dict)
    """Topic → contract (union) this service publishes; for the AsyncAPI document."""
    http_routes: Callable[["ServiceRuntime"], list[tuple[str, ASGIApp]]] = lambda _runtime: []
    on_start: Callable[["ServiceRuntime"], Awaitable[None]] | None = None
    on_stop: Callable[["ServiceRuntime"], Awaitable[None]] | None = None
    collectors: Sequence[Any] = ()
    """Extra Prometheus collectors of the service (made before its registry exists, e.g. outside-call metrics)."""


class ServiceRuntime:
    """The live resources of a running service: settings, pool, Kafka producer, relay, metrics, logger."""

    def __init__(self, definition: ServiceDefinition, settings: ServiceSettings) -> None:
        self.definition = definition
        self.settings = settings
        self.metrics = Metrics(definition.name)
        for collector in definition.collectors:
            self.metrics.registry.register(collector)
        self.log = structlog.get_logger(definition.name)
        self.group_id = f"ordermesh-{definition.name}"
        self._pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self.relay: OutboxRelay | None = None
        self.kafka_gauges: KafkaGauges | None = None
        self.broker_connected = False
        self.kafka_reachable = False
        self.stalled_topics: set[str] = set()
        self._watcher: asyncio.Task[None] | None = None
        self.parking = Parking(
            lambda: self.pool,
            retry_seconds=settings.parked_retry_seconds,
            max_seconds=settings.parked_max_seconds,
        )
        self.fences: list[PartitionFence] = []
        self.between_batches: list[BetweenBatches] = []
        self._tasks: list[asyncio.Task] = []

    def every(self, name: str, period_seconds: float, job: Job) -> None:
        """Runs `job` once per `period_seconds` across all replicas (one `job_runs` row per period), until stop."""
        self._tasks.append(asyncio.create_task(run_every(f"{self.definition.name}:{name}", period_seconds, job, lambda: self.pool)))

    @property
    def pool(self) -> asyncpg.Pool:
        """The service's connection pool (exists once started)."""
        if self._pool is None:
            raise RuntimeError("the service has not started")
        return self._pool

    async def start(self) -> None:
        """Waits for PostgreSQL (and migrates) and for Kafka, both at once; starts the outbox relay."""
        dsn = self.settings.database_url.get_secret_value()
        kafka_options = aiokafka_options(self.settings)
        await asyncio.gather(
            self._open_database(dsn),
            wait_for_kafka(kafka_options, self.settings.startup_retry_max_seconds, self.log),
        )
        self.producer = AIOKafkaProducer(
            **kafka_options,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            partitioner=RememberingPartitioner(),
            client_id=f"{self.group_id}-relay",
        )
        await self.producer.start()
        self.relay = OutboxRelay(
            dsn=dsn,
            producer=self.producer,
            metrics=self.metrics,
            batch_size=self.settings.relay_batch_size,
            poll_seconds=self.settings.relay_poll_seconds,
            retry_max_seconds=self.settings.startup_retry_max_seconds,
        )
        self.relay.start()
        self.kafka_reachable = True
        self._watcher = asyncio.create_task(self._watch(), name="health-watch")
        self._tasks.append(asyncio.create_task(self.parking.run_sweeps(), name="parked-sweeps"))
        self.kafka_gauges = KafkaGauges(
            self.metrics.registry,
            kafka_options=kafka_options,
            group=self.group_id,
            dead_letter_topics=[dead_letter_topic(s.topic) for s in self.definition.subscriptions],
            interval=self.settings.lag_interval_seconds,
        )
        self.kafka_gauges.start()
        if self.definition.on_start:
            await self.definition.on_start(self)

    async def _open_database(self, dsn: str) -> None:
        self._pool = await create_pool_when_ready(
            dsn,
            size=self.settings.db_pool_size,
            max_wait_seconds=self.settings.startup_retry_max_seconds,
            log=self.log,
            init=prime_codecs,
            reset=keep_session,
        )
        async with self._pool.acquire() as conn:
            applied = await migrate_service(conn, self.definition.name, self.definition.migrations)
        self.log.info("migrations applied", applied=[f"{m.component}:{m.version:04d}" for m in applied])

    async def stop(self) -> None:
        """Stops the periodic jobs and sweeps, the service's own resources, the relay, the producer and the pool."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.definition.on_stop:
            await self.definition.on_stop(self)
        for fence in self.fences:
            await fence.close()
        if self._watcher:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        if self.kafka_gauges:
            await self.kafka_gauges.stop()
        if self.relay:
            await self.relay.stop()
        if self.producer:
            await self.producer.stop()
        if self._pool:
            await self._pool.close()

    async def readiness(self) -> dict[str, bool]:
        """Per-dependency readiness for /readyz: database, Kafka, the outbox relay and every consumer."""
        database = False
        if self._pool is not None:
            try:
                database = await self._pool.fetchval("SELECT true", timeout=2) is True
            except Exception:  # noqa: BLE001 - any failure means not ready
                database = False
        checks = {
            "database": database,
            "kafka": self.broker_connected and self.producer is not None and self.kafka_reachable,
            "outbox_relay": self.relay is not None and self.relay.healthy,
            "consumers": self.broker_connected and not self.stalled_topics,
        }
        for dependency, up in checks.items():
            self.metrics.dependency_up(dependency).set(1 if up else 0)
        return checks

    async def _watch(self) -> None:
        """Checks Kafka's metadata and measures the outbox backlog, every `health_check_seconds`."""
        while True:
            self.kafka_reachable = await self._kafka_answers()
            try:
                backlog, oldest_age = await outbox_backlog(self.pool)
                self.metrics.outbox_backlog.set(backlog)
                self.metrics.outbox_oldest_age.set(oldest_age)
                self.metrics.outbox_failed_pending.set(await pending_count(self.pool))
            except Exception as error:  # noqa: BLE001 - the database check of /readyz reports it
                self.log.warning("outbox backlog not measured", error=type(error).__name__)
            await asyncio.sleep(self.settings.health_check_seconds)

    async def _kafka_answers(self) -> bool:
        if self.producer is None:
            return False
        try:
            await asyncio.wait_for(_brokers_answer(self.producer.client), timeout=max(5.0, self.settings.health_check_seconds))
            return True
        except Exception as error:  # noqa: BLE001 - whatever it is, Kafka did not answer
            if self.kafka_reachable:
                self.log.warning("kafka not answering", error=type(error).__name__)
            return False


async def _brokers_answer(client: Any) -> None:
    """Returns once a broker answers a metadata request for no topic (brokers only); raises if none does.

    Asking for every topic's metadata (as `fetch_all_metadata` does) cost the broker and this process far more, every
    few seconds, for the same answer to "is Kafka there"."""
    for broker in client.cluster.brokers() or ():
        try:
            await client.send(broker.nodeId, MetadataRequest([]))
            return
        except KafkaError:
            continue
    raise KafkaConnectionError("no broker answered a metadata request")


async def wait_for_kafka(options: dict[str, Any], max_wait_seconds: float, log: Any) -> None:
    """Returns once a metadata request to Kafka succeeds, logging one line per failed attempt.

    `options` are aiokafka's connection arguments (`aiokafka_options`). Raises `KafkaAccessRefused` at once
    when Kafka refuses the credentials or the TLS set-up, since waiting would not help.
    """
    attempt = 0
    async for delay in backoff_delays(max_wait_seconds):
        attempt += 1
        admin = AIOKafkaAdminClient(**options, request_timeout_ms=5000)
        try:
            await check_access(options)
            await admin.start()
            await admin.list_topics()
            return
        except (KafkaError, OSError) as error:
            log.warning("kafka not reachable yet, retrying", attempt=attempt, retry_in_s=delay, error=type(error).__name__)
            await asyncio.sleep(delay)
        finally:
            await admin.close()


def create_service_app(definition: ServiceDefinition, settings: ServiceSettings) -> AsgiFastStream:
    """The service's ASGI + FastStream app: subscribers with a manual ack after commit, health routes, lifespan."""
    configure_logging(definition.name, settings.log_level)
    tracer_provider = configure_tracing(definition.name)
    faststream_logger = logging.getLogger(f"ordermesh.{definition.name}.faststream")
    runtime = ServiceRuntime(definition, settings)
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=faststream_security(settings),
        enable_idempotence=True,
        acks="all",
        client_id=runtime.group_id,
        logger=faststream_logger,
        log_level=logging.DEBUG,
        ack_policy=AckPolicy.MANUAL,
        apply_types=False,  # the handler takes the message as its body (`subscribing.the_message_itself`)
    )
    if definition.subscriptions:
        subscribe(broker, runtime, definition.subscriptions)
    for topic, contract in definition.publishes.items():
        broker.publisher(topic, schema=contract, title=f"{definition.name}:{topic}", description=f"What {definition.name} publishes on {topic}.")

    @asynccontextmanager
    async def lifespan(*_args: Any, **_kwargs: Any) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            runtime.broker_connected = False
            await runtime.stop()
            if tracer_provider is not None:
                tracer_provider.shutdown()

    routes = [
        *health_routes(runtime.readiness, runtime.metrics.registry),
        *outbox_failed_routes(settings.api_token.get_secret_value(), lambda: runtime.pool),
        *definition.http_routes(runtime),
    ]
    app = AsgiFastStream(
        broker,
        asgi_routes=[(path, limit_body(route, settings.http_max_body_bytes)) for path, route in routes],
        lifespan=lifespan,
        after_startup=[partial(_mark_connected, runtime)],
        on_shutdown=[partial(_settle_consumers, runtime)],
        logger=faststream_logger,
    )
    app.runtime = runtime  # type: ignore[attr-defined]
    return app


async def _settle_consumers(runtime: ServiceRuntime) -> None:
    """Before the consumers stop: commit what they processed and give back their fences."""
    await asyncio.gather(*(between.stop() for between in runtime.between_batches))


async def _mark_connected(runtime: ServiceRuntime) -> None:
    runtime.broker_connected = True
    _freeze_startup_heap()
    runtime.log.info("service started", group_id=runtime.group_id)


def _freeze_startup_heap() -> None:
    """Moves what start-up built (modules, contracts' validators, the wiring) out of the garbage collector's sight.

    Those objects live as long as the process, yet every full collection walked all of them again: under load that
    was 1-7% of a service's CPU. Frozen, a collection looks only at what handling messages allocated since."""
    gc.collect()
    gc.freeze()


def run_service(create_app: Callable[[], AsgiFastStream]) -> None:
    """Runs a service until SIGINT/SIGTERM: uvicorn serves the HTTP routes and drives the lifespan."""
    app = create_app()
    settings: ServiceSettings = app.runtime.settings  # type: ignore[attr-defined]
    log = app.runtime.log  # type: ignore[attr-defined]
    try:
        asyncio.run(wait_for_kafka(aiokafka_options(settings), settings.startup_retry_max_seconds, log))
    except KafkaAccessRefused as refused:
        log.error("cannot start: Kafka refused the connection", reason=str(refused), kafka=settings.describe())
        sys.exit(2)
    uvicorn.run(
        app, host=settings.http_host, port=settings.http_port, log_config=None, access_log=False, lifespan="on", loop="uvloop",
        http=BoundedHttpToolsProtocol,
    )
