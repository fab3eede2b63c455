"""How the CLI talks to ordermesh: commands over Kafka answered on `ops.replies.v1`, reads over the services' JSON endpoints."""

import asyncio
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from dotenv import dotenv_values

from ordermesh_contracts import Command, topics
from ordermesh_servicekit.kafka_clients import KafkaClientSettings, aiokafka_options


@dataclass(frozen=True)
class Connection:
    """Where ordermesh runs: Kafka, the services' HTTP addresses, and the staff token."""

    bootstrap: str
    service_urls: dict[str, str]
    token: str
    kafka_security: dict[str, Any] = field(default_factory=dict)
    """aiokafka TLS/SASL keyword arguments (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_CA_FILE)."""

    @classmethod
    def from_environment(cls, env_file: Path | None = None) -> "Connection":
        """From the environment, completed by `.run/ops.env` (written by `make run`) when present."""
        values: dict[str, Any] = {}
        env_file = env_file or Path(".run/ops.env")
        if env_file.exists():
            values.update(dotenv_values(env_file))
        values.update(os.environ)
        services = ("orders", "payments", "shipping", "points", "notify")
        kafka = aiokafka_options(KafkaClientSettings(_env_file=env_file if env_file.exists() else None))
        return cls(
            bootstrap=kafka.pop("bootstrap_servers"),
            service_urls={s: values.get(f"ORDERMESH_{s.upper()}_URL", "") for s in services},
            token=values.get("ORDERMESH_API_TOKEN", ""),
            kafka_security=kafka,
        )


async def send_command(connection: Connection, topic: str, command: Command, timeout: float = 30) -> dict[str, Any]:
    """Publishes a command and returns its reply (CommandAccepted or CommandRejected) as JSON."""
    consumer = AIOKafkaConsumer(
        topics.OPS_REPLIES,
        bootstrap_servers=connection.bootstrap,
        **connection.kafka_security,
        group_id=f"ordermesh-cli-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        for partition in consumer.assignment():
            await consumer.position(partition)
        producer = AIOKafkaProducer(
            bootstrap_servers=connection.bootstrap, acks="all", enable_idempotence=True, **connection.kafka_security
        )
        await producer.start()
        try:
            await producer.send_and_wait(
                topic,
                command.model_dump_json().encode(),
                key=command.kafka_key().encode(),
                headers=[("type", command.type.encode())],
            )
        finally:
            await producer.stop()
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    reply = json.loads(record.value)
                    if reply.get("command_id") == str(command.event_id):
                        return reply
        raise TimeoutError(f"no reply to {command.type} {command.event_id} within {timeout} s")
    finally:
        await consumer.stop()


def get_json(connection: Connection, service: str, path: str, **params: Any) -> Any:
    """GETs a staff JSON endpoint of a service."""
    base = connection.service_urls.get(service)
    if not base:
        raise SystemExit(f"no address for {service}: set ORDERMESH_{service.upper()}_URL or run `make run`")
    response = httpx.get(
        f"{base}{path}",
        params={k: v for k, v in params.items() if v is not None},
        headers={"Authorization": f"Bearer {connection.token}"},
        timeout=10,
    )
    if response.status_code >= 400:
        raise SystemExit(f"{service} answered {response.status_code}: {response.text}")
    return response.json()
