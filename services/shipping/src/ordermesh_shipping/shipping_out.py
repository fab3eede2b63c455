"""Recording that a parcel of a shipment left: shared by warehouse reports and carrier tracking files."""

from datetime import datetime
from uuid import UUID

import asyncpg

from ordermesh_contracts import ShipmentCancelFailed, ShipmentShipped, ShippedLine, topics
from ordermesh_servicekit.consuming import UnitOfWork

from . import store, store_shipments
from .batch_reports import BatchShipments, Shipment
from .store_shipments import ParcelBooked
from .store import DEFAULT_WAREHOUSE
from .domain.allocation import from_allocation
from .domain.parcels import SHIPPED, ParcelRefused, plan_parcel, units_of


async def ship(
    uow: UnitOfWork,
    shipment: asyncpg.Record,
    *,
    carrier: str,
    tracking_number: str,
    shipped_at: datetime,
    lines: list[ShippedLine],
    correlation_id: UUID,
    causation_id: UUID,
    facts: store_shipments.ParcelFacts | None = None,
    batch: BatchShipments | None = None,
) -> Shipment:
    """Books one parcel of a (locked) shipment: records it, takes its units out of stock, and publishes
    ShipmentShipped with what the parcel carries. The shipment is partly shipped until every unit of its delivery
    group is out, then shipped; `all_shipped` says whether every delivery group of the order now is.

    Returns the shipment as the parcel leaves it (still locked): as it was for a parcel already booked with this
    tracking number (a repeat changes nothing). Raises
    ParcelRefused for a tracking number of another shipment's parcel, a parcel carrying nothing, or more than the
    shipment has unshipped; nothing is recorded then.

    A shipment cancelled before it left is recorded and flagged (goods left without an order) and answered with
    ShipmentCancelFailed, a task for staff; its units leave stock on hand, and the allocation only as far as the
    cancel kept units set aside for the order (it released them when staff chose to restore stock).

    `facts`: what booking the parcel reads, if the caller read it already (a batch's preload); else it is read here.
    In a `batch` (the shipment taken from it), the parcel is booked with the batch's other writes at its end, unless
    the shipment was cancelled; the batch's writes are made first whenever this reads or writes the database itself.
    """
    if facts is None:
        if batch is not None:
            await batch.settle(uow.conn)
        facts = await store_shipments.parcel_facts(uow.conn, shipment, tracking_number, DEFAULT_WAREHOUSE)
    if facts.owner == shipment["shipment_id"]:
        return shipment
    if facts.owner is not None:
        raise ParcelRefused(f"tracking number {tracking_number} is already used by a parcel of shipment {facts.owner}")
    units = units_of([(line.sku, line.quantity) for line in lines])
    cancelled = shipment["status"] == "cancelled"
    if cancelled:
        if not units:
            raise ParcelRefused("the parcel carries no units")
        status = "cancelled"
    else:
        status = plan_parcel(facts.group, facts.shipped_before, units).status
    parcel = ParcelBooked(
        shipment["shipment_id"], shipment["order_id"], tracking_number, carrier, shipped_at, units,
        from_allocation(units, facts.allocated, facts.order_shipped_before),
    )
    if batch is not None and not cancelled:
        saved = batch.book(shipment, parcel, status)
    else:
        if batch is not None:
            await batch.settle(uow.conn)
        saved = await store_shipments.book_parcel(uow.conn, parcel, status=status, warehouse=DEFAULT_WAREHOUSE)
    if cancelled:
        return await _shipped_after_cancel(
            uow, shipment, carrier, tracking_number, correlation_id=correlation_id, causation_id=causation_id
        )
    uow.publish(
        topics.SHIPPING_EVENTS,
        ShipmentShipped(
            order_id=shipment["order_id"],
            shop_id=facts.shop_id,
            shipment_id=shipment["shipment_id"],
            delivery_index=shipment["delivery_index"],
            carrier=carrier,
            tracking_number=tracking_number,
            shipped_at=shipped_at,
            lines=[ShippedLine(sku=sku, quantity=quantity) for sku, quantity in sorted(units.items())],
            all_shipped=facts.others_unshipped == 0 and status == SHIPPED,
            correlation_id=correlation_id,
            causation_id=causation_id,
        ),
    )
    return saved


async def _shipped_after_cancel(
    uow: UnitOfWork, shipment: asyncpg.Record, carrier: str, tracking_number: str, *, correlation_id: UUID, causation_id: UUID
) -> asyncpg.Record:
    reason = f"shipped after the order was cancelled: goods left without an order ({carrier} {tracking_number})"
    flagged = await store_shipments.flag_shipped_after_cancel(uow.conn, shipment["shipment_id"], reason)
    # No cancellation row: an edit emptied the delivery group; nothing was restored for a cancel then.
    cancellation = await store.cancellation(uow.conn, shipment["order_id"])
    [delivery, *_] = await store.deliveries(uow.conn, shipment["order_id"])
    uow.publish(
        topics.SHIPPING_EVENTS,
        ShipmentCancelFailed(
            order_id=shipment["order_id"],
            shop_id=delivery["shop_id"],
            shipment_id=shipment["shipment_id"],
            delivery_index=shipment["delivery_index"],
            reason=reason,
            stock_released=bool(cancellation and cancellation["restore_stock"]),
            correlation_id=correlation_id,
            causation_id=causation_id,
        ),
    )
    return flagged
