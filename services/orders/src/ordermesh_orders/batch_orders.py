"""The orders of a batch of flag events: locked and read together once, and saved together once when the batch's
handlers are done (the preload and finish of orders' batched subscriptions)."""

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any
from uuid import UUID

import asyncpg
from ordermesh_servicekit.outbox import OutgoingMessage

from . import store
from .domain.progress import OrderState
from .settling import SaveState


class BatchOrders:
    """Every order a batch's events are about, as it stands in the batch's transaction, and the saves its handlers
    left to be written together.

    An order is as preloaded until an event of the batch takes it; the event gives it back, as it will be once saved,
    if nothing but that save (left for the batch's end) changed it, and the order's next event in the batch takes it
    from there, its save joining the one left. An event that writes the order before saving it (tasks, rules, a
    `then=` step) first has what the batch left to save of it written, so the order's history stays in order; and once
    an event changed the order otherwise, its later events in the batch lock and read it again, as they do one at a
    time. That is enough because no handler of these subscriptions writes an order other than its own event's (see
    `handlers.lock_batch_orders`)."""

    def __init__(self, preloaded: dict[UUID, store.StoredOrder]) -> None:
        self._orders = preloaded
        self._saves: dict[UUID, store.StateSave] = {}

    async def take(
        self, conn: asyncpg.Connection, order_id: UUID, *, writes_first: Callable[[store.StoredOrder], bool]
    ) -> store.StoredOrder | None:
        """The order as it stands, if the batch holds it (until it is given back by `saving`); else None, for the
        caller to lock and read it. What the batch left to save of it is written first when it is None, or when
        `writes_first(order)`: the caller writes to the order before saving it."""
        order = self._orders.pop(order_id, None)
        if order is None or writes_first(order):
            await self._write_now(conn, order_id)
        return order

    def saving(self, order: store.StoredOrder, *, give_back: bool, kept: store.Kept | None = None) -> SaveState:
        """A `store.save_state` that keeps the save (with what the event `kept`) for the batch's `write` instead of
        writing it now, joined to what an earlier event of the order left to save. `give_back`: nothing but this save
        changed `order` since it was taken, so the order's next event in the batch may take it as saved."""

        async def save_later(
            conn: asyncpg.Connection, order_id: UUID, state: OrderState, *,
            history: list[tuple[str, str, dict[str, Any]]] | None = None, cause_id: UUID | None = None,
        ) -> None:
            entries = [(cause_id, actor, what, details) for actor, what, details in history or []]
            save = store.StateSave(order_id, state, entries, kept or store.Kept())
            earlier = self._saves.get(order_id)
            self._saves[order_id] = save if earlier is None else earlier.then(save)
            if give_back:
                self._orders[order_id] = replace(order, state=state)

        return save_later

    async def write(self, conn: asyncpg.Connection, publish: Sequence[OutgoingMessage]) -> bool:
        """Writes every save the batch's handlers left, with the batch's outbox rows `publish`, in one statement; False,
        and nothing written, if there is no save left."""
        saves, self._saves = list(self._saves.values()), {}
        return await store.save_states(conn, saves, publish)

    async def _write_now(self, conn: asyncpg.Connection, order_id: UUID) -> None:
        if (save := self._saves.pop(order_id, None)) is not None:
            await store.save_states(conn, [save])
