"""The shop orders of an intake batch: what decides them read together once, and the accepted ones inserted together
once when the batch's handlers are done (the preload and finish of the intake's batched subscription)."""

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from ordermesh_servicekit.outbox import OutgoingMessage

from . import store


class OrderTakenInMeanwhile(Exception):
    """An order the batch accepted as new was inserted by someone else before the batch's end: the batch is undone,
    and its records are taken in one at a time (where that order is a repeat)."""


class IntakeBatch:
    """What decides a batch's shop orders (by shop and customer), which of them are known already, and the accepted
    orders its handlers left to be inserted together.

    An order is accepted as new unless it was known when the batch began, or is left to be inserted already (a shop's
    order sent twice in one batch): a repeat, as one at a time. Should one of them still be taken in meanwhile (an
    intake elsewhere of the same shop order, between the batch's read and its end), `write` raises
    `OrderTakenInMeanwhile`."""

    def __init__(self, bases: dict[tuple[str, str], store.IntakeBasis], known: set[UUID]) -> None:
        self._bases = bases
        self._known = known
        self._new: list[store.NewOrder] = []

    def basis(self, shop_id: str, customer_id: str) -> store.IntakeBasis | None:
        """What decides an order of this shop and customer, if the batch read it."""
        return self._bases.get((shop_id, customer_id))

    def insert_later(self, new: store.NewOrder) -> bool:
        """Leaves the order to be inserted at the batch's end; False, and nothing left, if it is known already."""
        order_id = new.acceptance.accepted.order_id
        if order_id in self._known:
            return False
        self._known.add(order_id)
        self._new.append(new)
        return True

    async def write(self, conn: asyncpg.Connection, publish: Sequence[OutgoingMessage]) -> bool:
        """Inserts every order the batch's handlers left, with the batch's outbox rows `publish`, in one statement;
        False, and nothing written, if there is no order left."""
        new, self._new = self._new, []
        if not new:
            return False
        if len(await store.insert_accepted_orders(conn, new, publish)) < len(new):
            raise OrderTakenInMeanwhile("an order of the batch was taken in by another intake meanwhile")
        return True
