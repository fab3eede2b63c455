"""The orders of a batch of flag events: locked and read together once, and saved together once when the batch's
handlers are done (the preload and finish of orders' batched subscriptions)."""

from typing import Any
from uuid import UUID

import asyncpg

from . import store
from .domain.progress import OrderState
from .settling import SaveState


class BatchOrders:
    """Every order a batch's events are about, as locked and read before its handlers ran, and the saves they left.

    A preloaded order is the order as stored only until a handler of the batch writes it. So each is taken at most
    once, by the first event of its order in the batch; the order's later events in the batch lock and read it again,
    as they do one at a time, once what the earlier ones left to save of it is written. That is enough because no
    handler of these subscriptions writes an order other than its own event's (see `handlers.lock_batch_orders`)."""

    def __init__(self, preloaded: dict[UUID, store.StoredOrder]) -> None:
        self._preloaded = preloaded
        self._saves: dict[UUID, store.StateSave] = {}

    async def take(self, conn: asyncpg.Connection, order_id: UUID) -> store.StoredOrder | None:
        """The order as preloaded, if no event of the batch took it yet; else None, and the order as stored again
        (what an earlier event left to save of it written), for the caller to lock and read."""
        order = self._preloaded.pop(order_id, None)
        if order is None:
            await self._write_now(conn, order_id)
        return order

    def saving(self, external_order_no: str) -> SaveState:
        """A `store.save_state` that keeps the save for the batch's `write` instead of writing it now."""

        async def save_later(
            conn: asyncpg.Connection, order_id: UUID, state: OrderState, *,
            history: list[tuple[str, str, dict[str, Any]]] | None = None, cause_id: UUID | None = None,
        ) -> None:
            await self._write_now(conn, order_id)
            self._saves[order_id] = store.StateSave(order_id, external_order_no, state, history or [], cause_id)

        return save_later

    async def write(self, conn: asyncpg.Connection) -> None:
        """Writes every save the batch's handlers left, in one statement."""
        saves, self._saves = list(self._saves.values()), {}
        await store.save_states(conn, saves)

    async def _write_now(self, conn: asyncpg.Connection, order_id: UUID) -> None:
        if (save := self._saves.pop(order_id, None)) is not None:
            await store.save_state(conn, order_id, save.state, history=save.history, cause_id=save.cause_id)
