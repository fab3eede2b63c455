"""One function per message the shipping service consumes from orders and from the warehouse."""

from collections import Counter
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from ordermesh_contracts import (
    ChangeDeliveryMethod,
    DeliveryChecksConfirmed,
    Message,
    OrderAccepted,
    OrderCancelled,
    OrderEdited,
    OrderProgressed,
    OrderReturned,
    ShipmentDelivered,
    Stage,
    WarehouseDeliveryReported,
    WarehouseShipmentReported,
    topics,
)
from ordermesh_servicekit.consuming import MessageContext, PermanentError, UnitOfWork
from ordermesh_servicekit.parking import DependencyMissing
from ordermesh_servicekit.unit_of_work import ClaimingPreload, InboxClaim

from . import store, store_holds, store_shipments, store_stock
from .adapters.ingress import ShipmentOrigins
from .adapters.warehouse import Warehouse
from .accepting import accept_order
from .allocating import allocate_order, allocate_waiting
from .batch_orders import read_batch_orders, write_batch_orders
from .cancelling import cancel_order_shipping
from .delivery_methods import change_delivery_method
from .domain.holds import holding
from .domain.parcels import ParcelRefused
from .editing import apply_order_edit
from .requesting import release_and_request, request_shipments
from .shipping_out import ship
from .store import DEFAULT_WAREHOUSE


def calls_the_warehouse(event: Message) -> bool:
    """Whether handling this orders event may call the warehouse: it then goes alone, never in a batch's transaction.
    Only acceptance, allocation (and the stages shipping ignores) and returns touch nothing but the database."""
    if isinstance(event, OrderProgressed):
        return event.to_stage is Stage.READY_TO_SHIP
    return not isinstance(event, (OrderAccepted, OrderReturned))


BATCH_ORDERS = {"preload": ClaimingPreload(read_batch_orders), "finish": write_batch_orders}
"""How the orders events' subscription reads a batch's orders once and writes what its handlers decided once
(`Subscription(..., **BATCH_ORDERS)`; see `BatchOrders`)."""


class ShippingHandlers:
    """Handlers bound to the warehouse they request shipments from (and to the `origins` its callbacks read)."""

    def __init__(
        self, warehouse: Warehouse, *, max_request_attempts: int = 5, origins: ShipmentOrigins | None = None
    ) -> None:
        self._warehouse = warehouse
        self._max_request_attempts = max_request_attempts
        self._origins = origins

    async def on_order_accepted(self, order: OrderAccepted, ctx: MessageContext) -> None:
        """Keeps the order's lines and deliveries, checks delivery dates and carrier rules, and says what it found."""
        async with ctx.unit_of_work() as uow:
            await accept_order(uow, order, ctx.preloaded)

    async def on_order_progressed(self, progressed: OrderProgressed, ctx: MessageContext) -> None:
        """Allocates stock when the order awaits allocation; requests shipments when it is ready to ship."""
        if progressed.to_stage is Stage.AWAITING_ALLOCATION:
            async with ctx.unit_of_work() as uow:
                await allocate_order(
                    uow,
                    progressed.order_id,
                    requested_at=progressed.occurred_at,
                    correlation_id=progressed.correlation_id,
                    causation_id=progressed.event_id,
                    batch=ctx.preloaded,
                )
        elif progressed.to_stage is Stage.READY_TO_SHIP:
            await request_shipments(
                self._warehouse, ctx, order_id=progressed.order_id, shop_id=progressed.shop_id, cause=progressed,
                max_attempts=self._max_request_attempts, announce_held=True, origins=self._origins,
            )

    async def on_checks_confirmed(self, confirmed: DeliveryChecksConfirmed, ctx: MessageContext) -> None:
        """Staff confirmed failed checks of the order: the groups they held go to the warehouse (if it is time)."""
        if await ctx.already_processed():
            return
        async with ctx.intent() as conn:
            await store_holds.confirm_checks(conn, confirmed.order_id, list(confirmed.checks), confirmed.confirmed_by)
            held = await store_holds.held_deliveries(conn, confirmed.order_id)
            still = {index: holding(failures, set(confirmed.checks)) for index, failures in held.items()}
            await store_holds.set_holds(conn, confirmed.order_id, still)
            carriers = {row["delivery_index"]: row["carrier"] for row in await store.deliveries(conn, confirmed.order_id)}
        await release_and_request(
            self._warehouse, ctx, order_id=confirmed.order_id, shop_id=confirmed.shop_id, cause=confirmed,
            released={index: carriers[index] for index, failures in still.items() if not failures}, how="confirmed",
            max_attempts=self._max_request_attempts,
        )

    async def on_change_delivery_method(self, command: ChangeDeliveryMethod, ctx: MessageContext) -> None:
        """Staff change a delivery group's carrier or time slot (checked again; a held group is released)."""
        await change_delivery_method(self._warehouse, command, ctx, max_attempts=self._max_request_attempts)

    async def on_order_returned(self, returned: OrderReturned, ctx: MessageContext) -> None:
        """Goods came back after shipping: back on hand only when staff chose to restock them (orders waiting for
        those skus are served from them); shipments and the order's lines stay as they shipped."""
        async with ctx.unit_of_work() as uow:
            if not returned.restock:
                return
            if ctx.preloaded is not None:
                await ctx.preloaded.settle(uow.conn)
            units: dict[str, int] = {}
            for line in returned.lines:
                units[line.sku] = units.get(line.sku, 0) + line.quantity
            await store_stock.lock_stock_rows(uow.conn, sorted(units))
            await store_stock.restock(uow.conn, units)
            await allocate_waiting(uow, sorted(units), returned.event_id)

    async def on_order_cancelled(self, cancelled: OrderCancelled, ctx: MessageContext) -> None:
        """Cancels the order's unshipped shipments (at the warehouse too) and releases its stock if staff asked."""
        await cancel_order_shipping(self._warehouse, cancelled, ctx, max_attempts=self._max_request_attempts)

    async def on_order_edited(self, edited: OrderEdited, ctx: MessageContext) -> None:
        """Makes allocation and unshipped warehouse requests follow the edit; answers ShippingEditApplied or
        ShippingEditRefused per delivery that already left."""
        await apply_order_edit(self._warehouse, edited, ctx, max_attempts=self._max_request_attempts)

    async def on_warehouse_shipment_reported(self, report: WarehouseShipmentReported, ctx: MessageContext) -> None:
        """Books a parcel that left the warehouse (once per tracking number), takes its units out of stock, and
        tells everyone; a parcel the shipment can't hold is dead-lettered with the reason."""
        async with ctx.unit_of_work() as uow:
            shipment = await _locked_shipment(uow, ctx, report.shipment_id)
            if shipment is None or shipment["order_id"] != report.order_id:
                raise PermanentError(f"the warehouse reported unknown shipment {report.shipment_id}")
            try:
                shipped = await ship(
                    uow,
                    shipment,
                    carrier=report.carrier,
                    tracking_number=report.tracking_number,
                    shipped_at=report.shipped_at,
                    lines=report.lines,
                    facts=ctx.preloaded.parcels.pop(report.event_id, None) if ctx.preloaded is not None else None,
                    **report.caused(),
                )
            except ParcelRefused as refused:
                raise PermanentError(
                    f"parcel {report.tracking_number} of shipment {report.shipment_id} refused: {refused}"
                ) from None
            _hand_back(ctx, shipped)

    async def on_delivery_reported(self, report: WarehouseDeliveryReported, ctx: MessageContext) -> None:
        """Records a delivered shipment (with cash collected on delivery) and tells everyone."""
        async with ctx.unit_of_work() as uow:
            shipment = await _locked_shipment(uow, ctx, report.shipment_id)
            if shipment is None or shipment["order_id"] != report.order_id:
                raise PermanentError(f"the warehouse reported delivery of unknown shipment {report.shipment_id}")
            if shipment["status"] == "delivered":
                return
            if shipment["status"] in ("requesting", "requested"):
                # Two callbacks taken by two replicas reach the topic in either order: wait for the shipment report.
                raise DependencyMissing(report.order_id, f"shipment {report.shipment_id} reported delivered before shipped")
            if shipment["status"] != "shipped":
                raise PermanentError(f"shipment {report.shipment_id} reported delivered while {shipment['status']}")
            delivered = await store_shipments.mark_delivered(
                uow.conn, report.shipment_id, report.order_id, report.delivered_at, report.cash_collected
            )
            uow.publish(
                topics.SHIPPING_EVENTS,
                ShipmentDelivered(
                    order_id=report.order_id,
                    shop_id=delivered.shop_id,
                    shipment_id=report.shipment_id,
                    delivery_index=shipment["delivery_index"],
                    delivered_at=report.delivered_at,
                    cash_collected=report.cash_collected,
                    all_delivered=delivered.others_undelivered == 0,
                    **report.caused(),
                ),
            )


@dataclass
class BatchShipments:
    """What a batch of warehouse reports preloads: its shipments, locked, by id, and what booking the first parcel
    reported for each order reads, by report (event id)."""

    shipments: dict[UUID, asyncpg.Record]
    parcels: dict[UUID, store_shipments.ParcelFacts]


async def lock_batch_shipments(
    conn: asyncpg.Connection, reports: list[WarehouseShipmentReported | WarehouseDeliveryReported],
    claim: InboxClaim | None = None,
) -> BatchShipments:
    """The preload of the warehouse callbacks' subscription: every shipment a batch's reports are about, locked and
    read in one statement (in order of id), by id, which writes the batch's inbox rows too when given their `claim`;
    then, in one more statement after those locks, what booking the first parcel reported for each order reads (of
    the reports to be processed, once the claim is read). The batch's handlers find it in `ctx.preloaded`.

    A preloaded shipment is the shipment as stored only until a handler of the batch writes it. So each is taken by
    the report of its shipment that uses it (`_locked_shipment` pops it), and only a handler that knows the shipment
    as it saved it hands that back (`_hand_back`: a parcel booked returns the shipment's row as written, and the batch
    holds its lock); after any other report, that shipment's next report in the batch locks and reads it again, as it
    does one at a time. That is enough because no handler of this subscription writes a shipment other than its
    report's: booking a parcel (`ship`, flagging one that left after a cancel included) and recording a delivery write
    `report.shipment_id` alone.

    What booking a parcel reads is about its order (its shipments, parcels and allocations) and its tracking number,
    and in this subscription only booking a parcel changes it (a delivery takes a shipment from shipped to delivered,
    which it counts alike). So it is preloaded for the order's first parcel report in the batch alone,
    and for none whose tracking number another report of the batch carries; every other parcel reads it when booked."""
    shipments = await store_shipments.lock_shipments(conn, sorted({report.shipment_id for report in reports}), claim)
    processed = claim.fresh() if claim is not None else reports
    parcels = [report for report in processed if isinstance(report, WarehouseShipmentReported)]
    carried = Counter(report.tracking_number for report in parcels)
    orders: set[UUID] = set()
    first: list[tuple[UUID, asyncpg.Record, str]] = []
    for report in parcels:
        if report.order_id in orders:
            continue
        orders.add(report.order_id)
        shipment = shipments.get(report.shipment_id)
        if shipment is not None and shipment["order_id"] == report.order_id and carried[report.tracking_number] == 1:
            first.append((report.event_id, shipment, report.tracking_number))
    if not first:
        return BatchShipments(shipments, {})
    facts = await store_shipments.parcels_facts(conn, [(shipment, number) for _, shipment, number in first], DEFAULT_WAREHOUSE)
    return BatchShipments(shipments, {event_id: facts[shipment["shipment_id"], number] for event_id, shipment, number in first})


async def _locked_shipment(uow: UnitOfWork, ctx: MessageContext, shipment_id: UUID) -> asyncpg.Record | None:
    """The report's shipment, locked: in a batch, the one preloaded or handed back, if there is one."""
    preloaded = ctx.preloaded.shipments.pop(shipment_id, None) if ctx.preloaded is not None else None
    return preloaded if preloaded is not None else await store_shipments.lock_shipment(uow.conn, shipment_id)


def _hand_back(ctx: MessageContext, shipment: asyncpg.Record) -> None:
    """In a batch, the shipment as this report's handler saved it (its row still locked) is what the batch's next
    report of it takes."""
    if ctx.preloaded is not None:
        ctx.preloaded.shipments[shipment["shipment_id"]] = shipment
