"""What the live view of `make run` shows besides orders: each service's health and each group's consumer lag."""

import asyncio
import contextlib
from dataclasses import dataclass, field

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from ordermesh_servicekit.lag import group_lag


@dataclass
class Monitor:
    """Polls every service's /readyz and every service group's lag every `interval` seconds, in the background."""

    bootstrap: str
    service_ports: dict[str, int]
    security: dict = field(default_factory=dict)
    interval: float = 2.0
    health: dict[str, str] = field(default_factory=dict)
    lag: dict[str, int] = field(default_factory=dict)
    _task: asyncio.Task | None = None

    def start(self) -> None:
        """Starts polling."""
        self._task = asyncio.create_task(self._run(), name="live-monitor")

    async def stop(self) -> None:
        """Stops polling."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _health(self, client: httpx.AsyncClient) -> None:
        for name, port in self.service_ports.items():
            try:
                answer = await client.get(f"http://127.0.0.1:{port}/readyz")
                checks = answer.json().get("checks", {})
                down = [k for k, ok in checks.items() if not ok]
                self.health[name] = "ready" if answer.status_code == 200 else "not ready: " + ", ".join(down)
            except (httpx.HTTPError, ValueError):
                self.health[name] = "no answer"

    async def _lag(self, admin: AIOKafkaAdminClient, reader: AIOKafkaConsumer) -> None:
        for name in self.service_ports:
            rows = await group_lag(admin, reader, f"ordermesh-{name}")
            self.lag[name] = sum(row.lag for row in rows)

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self.security)
                reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False, **self.security)
                try:
                    await admin.start()
                    await reader.start()
                    while True:
                        await self._health(client)
                        await self._lag(admin, reader)
                        await asyncio.sleep(self.interval)
                except (KafkaError, OSError):
                    await asyncio.sleep(self.interval)
                finally:
                    await reader.stop()
                    await admin.close()
