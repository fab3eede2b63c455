"""The orders of a batch of orders events: what their checks read and the stock their allocations take, read and
locked together once, and their acceptances and first allocations saved together once, with the batch's outbox rows,
when the batch's handlers are done (the preload and finish of shipping's orders-events subscription)."""

from collections.abc import Sequence
from typing import NamedTuple
from uuid import UUID

import asyncpg

from ordermesh_contracts import Message, OrderAccepted, OrderProgressed, Stage
from ordermesh_servicekit.outbox import OutgoingMessage
from ordermesh_servicekit.unit_of_work import InboxClaim

from . import store, store_batch
from .checks import skus_of
from .store import CheckInputs
from .store_batch import AcceptedOrder, NewAllocation, StockView


class CancelledMeanwhile(Exception):
    """Staff cancelled an order the batch allocated stock to after the batch read it: the batch is undone, and its
    records go one at a time (where the cancelled order gets nothing)."""


class AllocationBasis(NamedTuple):
    """What a first allocation of an order decides on in a batch: its units per sku, its shop, and the units available
    per sku as the batch left them."""

    demand: dict[str, int]
    shop_id: str
    available: dict[str, int]


class BatchOrders:
    """What a batch of orders events read once (the checks' inputs of its accepted orders, the stock its allocations
    take, locked) and what its handlers left to write together at its end (acceptances, first allocations).

    Only an order that holds no stock (it never reached allocation) is allocated in the batch's memory: on the demand
    the preload read (its lines stored before the batch) or the one its acceptance in this batch keeps, and on the
    stock as the batch's earlier allocations left it. Anything else (an order allocated before or already in this
    batch, returned goods) reads and writes the database itself, as one at a time: the batch's writes are made first
    and its stock view dropped (`settle`), so every later allocation of the batch does the same."""

    def __init__(self, checks: dict[tuple[UUID, str], CheckInputs], stock: StockView | None) -> None:
        self.checks = checks
        self._stock = stock
        self._accepted: dict[UUID, AcceptedOrder] = {}
        self._allocated: dict[UUID, NewAllocation] = {}
        self._allocated_before: set[UUID] = set()

    async def accept(self, conn: asyncpg.Connection, order: AcceptedOrder) -> None:
        """Keeps an accepted order to be stored with the batch (an order accepted twice in one batch: the first is
        stored now)."""
        if order.order_id in self._accepted:
            await self._write(conn, ())
        self._accepted[order.order_id] = order

    def allocation_basis(self, order_id: UUID) -> AllocationBasis | None:
        """What a first allocation of the order decides on, if the batch can allocate it in memory; None if the caller
        must settle the batch and read the database itself."""
        if self._stock is None or order_id in self._allocated_before:
            return None
        stored = self._stock.demand.get(order_id)
        accepted = self._accepted.get(order_id)
        if stored is not None and (stored.requested_at is not None or accepted is not None):
            return None
        if stored is not None and stored.units:
            return AllocationBasis(stored.units, stored.shop_id, self._stock.available)
        if stored is None and accepted is not None and accepted.lines:
            demand: dict[str, int] = {}
            for _, sku, units, *_ in accepted.lines:
                demand[sku] = demand.get(sku, 0) + units
            return AllocationBasis(demand, accepted.shop_id, self._stock.available)
        return None

    def allocate(self, allocation: NewAllocation) -> None:
        """Keeps a first allocation decided on `allocation_basis` to be saved with the batch; its units are no longer
        available to the batch's next allocations."""
        for sku, units in allocation.quantities.items():
            self._stock.available[sku] -= units
        self._allocated[allocation.order_id] = allocation
        self._allocated_before.add(allocation.order_id)

    async def settle(self, conn: asyncpg.Connection) -> None:
        """Writes what the batch's handlers left so far and drops the batch's stock view: the caller reads and writes
        stock, orders and allocations itself."""
        await self._write(conn, ())
        self._stock = None

    async def write(self, conn: asyncpg.Connection, publish: Sequence[OutgoingMessage]) -> bool:
        """Writes everything the batch's handlers left, with the batch's outbox rows `publish`, in one statement;
        False, and nothing written, if nothing is left. Raises `CancelledMeanwhile` if an order given stock was
        cancelled after the batch read it."""
        if not self._accepted and not self._allocated:
            return False
        await self._write(conn, publish)
        return True

    async def _write(self, conn: asyncpg.Connection, publish: Sequence[OutgoingMessage]) -> None:
        accepted, self._accepted = list(self._accepted.values()), {}
        allocated, self._allocated = list(self._allocated.values()), {}
        if not accepted and not allocated and not publish:
            return
        if not await store_batch.save_batch(conn, accepted, allocated, publish):
            raise CancelledMeanwhile("an order the batch allocated stock to was cancelled meanwhile")


async def read_batch_orders(
    conn: asyncpg.Connection, events: list[Message], claim: InboxClaim | None = None
) -> BatchOrders | None:
    """The preload of the orders events' subscription: what the checks of the batch's accepted orders read, in one
    statement that writes the batch's inbox rows too when given their `claim`; then, for the orders the batch
    allocates, their demand and the stock it takes, locked (`store_batch.lock_stock_of_orders`: with the claim, if
    no order is accepted), the stock of the skus of orders accepted in the batch too. None, and no statement, when the
    batch neither accepts nor allocates an order.

    The checks' inputs stay true through the batch: no message that joins one writes what the checks read (shop
    calendars and sku attributes are set by staff commands, confirmed checks by DeliveryChecksConfirmed, which goes
    alone), so every accepted order of the batch may use it. The stock view stays true while only the batch's first
    allocations change it (see `BatchOrders`)."""
    skus: dict[tuple[UUID, str], set[str]] = {}
    for event in events:
        if isinstance(event, OrderAccepted):
            skus.setdefault((event.order_id, event.shop_id), set()).update(skus_of(dict(enumerate(event.deliveries))))
    checks = {}
    if skus:
        checks = await store.check_inputs_of_orders(conn, [(order, shop, sorted(of)) for (order, shop), of in skus.items()], claim)
    later = claim.fresh() if claim is not None and claim.done else events
    allocating = sorted({event.order_id for event in later if _allocates(event)})
    if not allocating:
        return BatchOrders(checks, None) if skus else None
    accepted_skus = sorted({sku for (order_id, _), of in skus.items() if order_id in allocating for sku in of})
    stock = await store_batch.lock_stock_of_orders(
        conn, allocating, accepted_skus, claim if claim is not None and not claim.done else None
    )
    return BatchOrders(checks, stock)



def _allocates(event: Message) -> bool:
    return isinstance(event, OrderProgressed) and event.to_stage is Stage.AWAITING_ALLOCATION
