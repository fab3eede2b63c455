"""The orders and customer balances of a batch of order and payment events: locked and read together once, and saved
together once, with the batch's outbox rows, when the batch's handlers are done (the preload and finish of the points
service's batched subscriptions)."""

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from ordermesh_servicekit.outbox import OutgoingMessage

from . import store
from .domain.booking import Booking
from .domain.ledger import Balance


class BatchPoints:
    """Every order and customer balance a batch's messages are about, as it stands in the batch's transaction, and the
    saves its handlers left to be written together.

    A handler takes its order (and its customer's balance) and gives it back as its save leaves it: the order's row as
    saved, the balance after the entries booked (what the ledger's trigger makes of it once they are written, since
    every entry a batch books is new to the ledger: `booking.book` leaves out what its cause booked already, and a
    cause is a message the inbox had not seen or an edit kept for the accrual, which booked nothing when it came).
    The order's or customer's next message in the batch takes it from there.
    A handler that finds nothing to take locks and reads it itself, as one at a time; what the batch left to save is
    written first if it is about that order or customer, so that what it reads is as the batch left it."""

    def __init__(self, orders: dict[UUID, store.StoredOrder], balances: dict[tuple[str, str], Balance]) -> None:
        self._orders = orders
        self._balances = balances
        self._saves: list[store.OrderSave] = []
        self._saved_orders: set[UUID] = set()
        self._booked_for: set[tuple[str, str]] = set()

    async def take_order(self, conn: asyncpg.Connection, order_id: UUID) -> store.StoredOrder | None:
        """The order as it stands, if the batch holds it (until it is given back); else None, for the caller to lock
        and read it (what the batch left to save of it written first)."""
        order = self._orders.pop(order_id, None)
        if order is None and order_id in self._saved_orders:
            await self._write_now(conn)
        return order

    async def take_balance(self, conn: asyncpg.Connection, shop_id: str, customer_id: str) -> Balance | None:
        """The customer's balance as it stands, if the batch holds it (until it is given back); else None, for the
        caller to lock and read it (the entries the batch left to book for the customer written first)."""
        balance = self._balances.pop((shop_id, customer_id), None)
        if balance is None and (shop_id, customer_id) in self._booked_for:
            await self._write_now(conn)
        return balance

    def give_back(self, order: store.StoredOrder) -> None:
        """Gives back an order taken and left as it was."""
        self._orders[order.state.order_id] = order

    def save(self, order: store.StoredOrder, booked: Booking) -> None:
        """Keeps the save of `order` (its row as given, `booked`'s entries) for the batch's `write`, and gives back the
        order as saved and, when the booking had the customer's balance, the balance after its entries."""
        self._saves.append(store.OrderSave(order, booked.entries))
        self._saved_orders.add(order.state.order_id)
        self._orders[order.state.order_id] = order
        if booked.has_customer and order.customer_id is not None:
            self._balances[(order.shop_id, order.customer_id)] = booked.balance
            if booked.entries:
                self._booked_for.add((order.shop_id, order.customer_id))

    async def write(self, conn: asyncpg.Connection, publish: Sequence[OutgoingMessage]) -> bool:
        """Writes every save the batch's handlers left, with the batch's outbox rows `publish`, in one statement; False,
        and nothing written, if there is no save left."""
        saves, self._saves = self._saves, []
        self._saved_orders.clear()
        self._booked_for.clear()
        return await store.save_orders(conn, saves, publish)

    async def _write_now(self, conn: asyncpg.Connection) -> None:
        await self.write(conn, ())
