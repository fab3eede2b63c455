"""`ordermesh-init`: the one-shot job run before a service starts: create every topic, migrate its database.

Run with the service's own image and settings (`SERVICE` names the service; `DATABASE_URL` its database,
Kafka from `KafkaClientSettings`). Idempotent: existing topics and applied migrations are left alone, so
it runs on every install and upgrade (a compose one-shot service, a Helm pre-install/pre-upgrade hook).
"""

import asyncio
import importlib
import sys
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import AliasChoices, Field

from ordermesh_contracts.topics import all_topics_with_dead_letters

from .database import create_pool_when_ready
from .kafka_clients import KafkaAccessRefused, aiokafka_options
from .logging import configure_logging
from .migrations import migrate_service
from .service import wait_for_kafka
from .settings import ServiceSettings

_TOPIC_ALREADY_EXISTS = 36


class ProvisionSettings(ServiceSettings):
    """What the init job needs besides a service's own settings."""

    service: str = Field(
        default="",
        validation_alias=AliasChoices("SERVICE", "ORDERMESH_SERVICE"),
        description="The service whose database is migrated (orders, payments, shipping, points, notify).",
    )
    topic_partitions: int = Field(default=6, ge=1, description="Partitions of each topic the init job creates.")
    topic_replication_factor: int = Field(
        default=1, ge=1, description="Replication factor of each topic the init job creates (3 on a real cluster)."
    )


async def create_topics(options: dict[str, Any], topics: list[str], partitions: int, replication_factor: int) -> list[str]:
    """Creates those of `topics` that do not exist yet; returns the names it created. Raises on other errors."""
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in dict.fromkeys(topics) if name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor) for name in missing]
        )
        failures = [
            f"{error[0]}: error {error[1]} {error[2] if len(error) > 2 else ''}".strip()
            for error in response.topic_errors
            if error[1] not in (0, _TOPIC_ALREADY_EXISTS)
        ]
        if failures:
            raise RuntimeError("could not create Kafka topics: " + "; ".join(failures))
        return missing
    finally:
        await admin.close()


def service_migrations(service: str) -> Path:
    """The migrations folder shipped inside the service's package."""
    package = importlib.import_module(f"ordermesh_{service}")
    return Path(package.__file__).parent / "migrations"


async def provision(settings: ProvisionSettings) -> None:
    """Creates every topic and dead-letter topic, then applies the service's migrations."""
    logger = structlog.get_logger("init")
    options = aiokafka_options(settings)
    await wait_for_kafka(options, settings.startup_retry_max_seconds, logger)
    created = await create_topics(
        options, all_topics_with_dead_letters(), settings.topic_partitions, settings.topic_replication_factor
    )
    logger.info("topics ready", created=created)
    if not settings.service:
        return
    pool = await create_pool_when_ready(
        settings.database_url.get_secret_value(), size=1, max_wait_seconds=settings.startup_retry_max_seconds, log=logger
    )
    try:
        async with pool.acquire() as conn:
            applied = await migrate_service(conn, settings.service, service_migrations(settings.service))
    finally:
        await pool.close()
    logger.info("migrations applied", service=settings.service, applied=[f"{m.component}:{m.version:04d}" for m in applied])


def main() -> None:
    """Entry point of `ordermesh-init`."""
    settings = ProvisionSettings()
    configure_logging(f"{settings.service or 'ordermesh'}-init", settings.log_level)
    try:
        asyncio.run(provision(settings))
    except KafkaAccessRefused as refused:
        structlog.get_logger("init").error("cannot provision: Kafka refused the connection", reason=str(refused))
        sys.exit(2)
    except (asyncpg.PostgresError, RuntimeError) as error:
        structlog.get_logger("init").error("provisioning failed", error=f"{type(error).__name__}: {error}")
        sys.exit(1)


if __name__ == "__main__":
    main()
