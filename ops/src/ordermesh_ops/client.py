"""How the CLI talks to ordermesh: commands over Kafka answered on `ops.replies.v1`, reads over the services' JSON endpoints."""

import asyncio
import json
import os
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
        """From the environment, completed by the ops env file (see `find_ops_env`) when there is one."""
        values: dict[str, Any] = {}
        env_file = env_file or find_ops_env()
        if env_file is not None and env_file.is_file():
            values.update(dotenv_values(env_file))
        values.update(os.environ)
        services = ("orders", "payments", "shipping", "points", "notify")
        kafka = aiokafka_options(KafkaClientSettings(_env_file=env_file if env_file is not None and env_file.is_file() else None))
        return cls(
            bootstrap=kafka.pop("bootstrap_servers"),
            service_urls={s: values.get(f"ORDERMESH_{s.upper()}_URL", "") for s in services},
            token=values.get("ORDERMESH_API_TOKEN", ""),
            kafka_security=kafka,
        )


def find_ops_env(start: Path | None = None) -> Path | None:
    """The file naming where ordermesh runs: `ORDERMESH_OPS_ENV` if set, else the nearest `.run/ops.env` (written by
    `make run`) in the current directory or any parent, else `~/.config/ordermesh/ops.env`; None without any."""
    if os.environ.get("ORDERMESH_OPS_ENV"):
        return Path(os.environ["ORDERMESH_OPS_ENV"]).expanduser()
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / ".run" / "ops.env"
        if candidate.is_file():
            return candidate
    user_file = Path.home() / ".config" / "ordermesh" / "ops.env"
    return user_file if user_file.is_file() else None


class CommandChannel:
    """Publishes staff commands and waits for each one's reply on `ops.replies.v1`.

    A long-running tool (the web console) keeps one open; the CLI opens one per command. Replies are read from
    every partition without a consumer group, from the end as it was at start, so no rebalance delays a command.
    """

    def __init__(self, bootstrap: str, *, security: dict[str, Any] | None = None, client_id: str = "ordermesh-ops") -> None:
        self._bootstrap = bootstrap
        self._security = security or {}
        self._client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._reader: asyncio.Task | None = None
        self._waiting: dict[str, asyncio.Future] = {}

    async def start(self) -> None:
        """Connects, positions the reply reader at the end of every partition, and starts reading."""
        self._consumer = AIOKafkaConsumer(
            topics.OPS_REPLIES, bootstrap_servers=self._bootstrap, client_id=self._client_id, group_id=None,
            enable_auto_commit=False, auto_offset_reset="latest", **self._security,
        )
        await self._consumer.start()
        deadline = asyncio.get_running_loop().time() + 60
        while not self._consumer.assignment():  # without a group, every partition is assigned once metadata is in
            if asyncio.get_running_loop().time() > deadline:
                await self._consumer.stop()
                raise RuntimeError(f"no partitions of {topics.OPS_REPLIES} within 60 s")
            await self._consumer.getmany(timeout_ms=100)
        for partition in self._consumer.assignment():
            await self._consumer.position(partition)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, client_id=self._client_id, acks="all", enable_idempotence=True,
            **self._security,
        )
        await self._producer.start()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    try:
                        reply = json.loads(record.value)
                    except ValueError:
                        continue
                    waiter = self._waiting.pop(str(reply.get("command_id")), None) if isinstance(reply, dict) else None
                    if waiter and not waiter.done():
                        waiter.set_result(reply)

    async def send(self, topic: str, command: Command, timeout: float = 30) -> dict[str, Any]:
        """Publishes a command and returns its reply (CommandAccepted or CommandRejected) as JSON."""
        if self._producer is None:
            raise RuntimeError("the command channel has not started")
        key = str(command.event_id)
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[key] = waiter
        try:
            await self._producer.send_and_wait(
                topic,
                command.model_dump_json().encode(),
                key=command.kafka_key().encode(),
                headers=[("type", command.type.encode())],
            )
            return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no reply to {command.type} {command.event_id} within {timeout} s") from None
        finally:
            self._waiting.pop(key, None)

    async def stop(self) -> None:
        """Stops reading and disconnects."""
        if self._reader:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._producer:
            await self._producer.stop()
        if self._consumer:
            await self._consumer.stop()


async def send_command(connection: Connection, topic: str, command: Command, timeout: float = 30) -> dict[str, Any]:
    """Publishes a command and returns its reply (CommandAccepted or CommandRejected) as JSON."""
    channel = CommandChannel(connection.bootstrap, security=connection.kafka_security, client_id="ordermesh-cli")
    await channel.start()
    try:
        return await channel.send(topic, command, timeout)
    finally:
        await channel.stop()


def _get(connection: Connection, service: str, path: str, params: dict[str, Any]) -> httpx.Response:
    base = connection.service_urls.get(service)
    if not base:
        raise SystemExit(f"no address for {service}: set ORDERMESH_{service.upper()}_URL or run `make run`")
    return httpx.get(
        f"{base}{path}",
        params={k: v for k, v in params.items() if v is not None},
        headers={"Authorization": f"Bearer {connection.token}"},
        timeout=10,
    )


def get_json(connection: Connection, service: str, path: str, **params: Any) -> Any:
    """GETs a staff JSON endpoint of a service."""
    response = _get(connection, service, path, params)
    if response.status_code >= 400:
        raise SystemExit(f"{service} answered {response.status_code}: {response.text}")
    return response.json()


def get_json_or_none(connection: Connection, service: str, path: str, **params: Any) -> Any:
    """GETs a staff JSON endpoint of a service; None when it answers 404 (the service has no record)."""
    response = _get(connection, service, path, params)
    if response.status_code == 404:
        return None
    if response.status_code >= 400:
        raise SystemExit(f"{service} answered {response.status_code}: {response.text}")
    return response.json()


def post_json(connection: Connection, service: str, path: str, body: dict[str, Any]) -> Any:
    """POSTs a JSON body to a staff endpoint of a service; exits with the service's reason on a 4xx/5xx."""
    base = connection.service_urls.get(service)
    if not base:
        raise SystemExit(f"no address for {service}: set ORDERMESH_{service.upper()}_URL or run `make run`")
    response = httpx.post(f"{base}{path}", json=body, headers={"Authorization": f"Bearer {connection.token}"}, timeout=30)
    if response.status_code >= 400:
        raise SystemExit(f"{service} answered {response.status_code}: {response.text}")
    return response.json()
