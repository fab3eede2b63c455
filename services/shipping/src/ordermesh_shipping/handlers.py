"""One function per message the shipping service consumes from orders and from the warehouse."""

from uuid import UUID

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
from ordermesh_servicekit.unit_of_work import ClaimingPreload, write_batch

from . import store, store_holds, store_shipments, store_stock
from .adapters.ingress import ShipmentOrigins
from .adapters.warehouse import Warehouse
from .accepting import accept_order
from .allocating import allocate_order, allocate_waiting
from .batch_orders import read_batch_orders
from .batch_reports import BatchShipments, Shipment, lock_batch_shipments
from .cancelling import cancel_order_shipping
from .delivery_methods import change_delivery_method
from .domain.holds import holding
from .domain.parcels import ParcelRefused
from .editing import apply_order_edit
from .requesting import release_and_request, request_shipments
from .shipping_out import ship


def calls_the_warehouse(event: Message) -> bool:
    """Whether handling this orders event may call the warehouse: it then goes alone, never in a batch's transaction.
    Only acceptance, allocation (and the stages shipping ignores) and returns touch nothing but the database."""
    if isinstance(event, OrderProgressed):
        return event.to_stage is Stage.READY_TO_SHIP
    return not isinstance(event, (OrderAccepted, OrderReturned))


BATCH_ORDERS = {"preload": ClaimingPreload(read_batch_orders), "finish": write_batch}
"""How the orders events' subscription reads a batch's orders once and writes what its handlers decided once
(`Subscription(..., **BATCH_ORDERS)`; see `BatchOrders`)."""

BATCH_SHIPMENTS = {"preload": ClaimingPreload(lock_batch_shipments), "finish": write_batch}
"""How the warehouse callbacks' subscription locks a batch's shipments once and writes what its handlers recorded
once (`Subscription(..., **BATCH_SHIPMENTS)`; see `BatchShipments`)."""


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
        batch: BatchShipments | None = ctx.preloaded
        async with ctx.unit_of_work() as uow:
            shipment = await _locked_shipment(uow, batch, report.shipment_id)
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
                    facts=batch.parcels.pop(report.event_id, None) if batch is not None else None,
                    batch=batch,
                    **report.caused(),
                )
            except ParcelRefused as refused:
                raise PermanentError(
                    f"parcel {report.tracking_number} of shipment {report.shipment_id} refused: {refused}"
                ) from None
            if batch is not None:
                batch.give_back(shipped)

    async def on_delivery_reported(self, report: WarehouseDeliveryReported, ctx: MessageContext) -> None:
        """Records a delivered shipment (with cash collected on delivery) and tells everyone."""
        batch: BatchShipments | None = ctx.preloaded
        async with ctx.unit_of_work() as uow:
            shipment = await _locked_shipment(uow, batch, report.shipment_id)
            if shipment is None or shipment["order_id"] != report.order_id:
                raise PermanentError(f"the warehouse reported delivery of unknown shipment {report.shipment_id}")
            if shipment["status"] == "delivered":
                if batch is not None:
                    batch.give_back(shipment)
                return
            if shipment["status"] in ("requesting", "requested"):
                # Two callbacks taken by two replicas reach the topic in either order: wait for the shipment report.
                raise DependencyMissing(report.order_id, f"shipment {report.shipment_id} reported delivered before shipped")
            if shipment["status"] != "shipped":
                raise PermanentError(f"shipment {report.shipment_id} reported delivered while {shipment['status']}")
            delivered = batch.deliver(shipment, report.delivered_at, report.cash_collected) if batch is not None else None
            if delivered is None:
                if batch is not None:
                    await batch.settle(uow.conn)
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


async def _locked_shipment(uow: UnitOfWork, batch: BatchShipments | None, shipment_id: UUID) -> Shipment | None:
    """The report's shipment, locked: in a batch, taken from it if it holds the shipment (else read once the batch's
    writes are made)."""
    taken = batch.take(shipment_id) if batch is not None else None
    if taken is not None:
        return taken
    if batch is not None:
        await batch.settle(uow.conn)
    return await store_shipments.lock_shipment(uow.conn, shipment_id)
