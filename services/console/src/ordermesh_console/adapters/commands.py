"""Sends staff commands through the ops client's command channel and records each one and its reply."""

import asyncio
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from ordermesh_contracts import Command
from ordermesh_ops.client import CommandChannel

from .. import store


@dataclass
class CommandSender:
    """Publishes commands (recorded first, so one left without a reply still shows) and waits for their replies."""

    channel: CommandChannel
    pool: asyncpg.Pool
    timeout: float

    async def send(self, topic: str, command: Command, *, batch_id: UUID | None = None) -> dict[str, Any]:
        """The command's reply; a reply that doesn't come in time is answered as `NoReply` (and stays recorded)."""
        order_ids = [UUID(str(i)) for i in getattr(command, "order_ids", None) or []]
        if getattr(command, "order_id", None):
            order_ids = [command.order_id, *order_ids]
        async with self.pool.acquire() as conn:
            await store.record_sent(
                conn, command.event_id, issued_by=command.issued_by, command_type=command.type, topic=topic,
                shop_id=command.shop_id, order_ids=order_ids, batch_id=batch_id,
            )
        try:
            reply = await self.channel.send(topic, command, timeout=self.timeout)
        except TimeoutError as error:
            return {"type": "NoReply", "command_id": str(command.event_id), "command_type": command.type, "reasons": [str(error)]}
        async with self.pool.acquire() as conn:
            await store.record_reply(conn, command.event_id, reply)
        return reply

    async def send_many(self, sends: list[tuple[str, Command]], *, batch_id: UUID, concurrency: int = 16) -> list[dict[str, Any]]:
        """Sends several commands, a few at a time; replies in the order given."""
        gate = asyncio.Semaphore(concurrency)

        async def one(topic: str, command: Command) -> dict[str, Any]:
            async with gate:
                return await self.send(topic, command, batch_id=batch_id)

        return await asyncio.gather(*(one(topic, command) for topic, command in sends))
