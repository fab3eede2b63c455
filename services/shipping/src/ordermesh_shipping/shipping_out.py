"""Recording that a parcel of a shipment left: shared by warehouse reports and carrier tracking files."""

from datetime import datetime
from uuid import UUID

import asyncpg

from ordermesh_contracts import ShipmentCancelFailed, ShipmentShipped, ShippedLine, topics
from ordermesh_servicekit.consuming import UnitOfWork

from . import store, store_shipments, store_stock
from .domain.allocation import from_allocation
from .domain.parcels import ParcelRefused, plan_parcel, units_of


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
) -> bool:
    """Books one parcel of a (locked) shipment: records it, takes its units out of stock, and publishes
    ShipmentShipped with what the parcel carries. The shipment is partly shipped until every unit of its delivery
    group is out, then shipped; `all_shipped` says whether every delivery group of the order now is.

    Returns False for a parcel already booked with this tracking number (a repeat changes nothing). Raises
    ParcelRefused for a tracking number of another shipment's parcel, a parcel carrying nothing, or more than the
    shipment has unshipped; nothing is recorded then.

    A shipment cancelled before it left is recorded and flagged (goods left without an order) and answered with
    ShipmentCancelFailed, a task for staff; its units leave stock on hand, and the allocation only as far as the
    cancel kept units set aside for the order (it released them when staff chose to restore stock).
    """
    owner = await store_shipments.parcel_owner(uow.conn, tracking_number)
    if owner == shipment["shipment_id"]:
        return False
    if owner is not None:
        raise ParcelRefused(f"tracking number {tracking_number} is already used by a parcel of shipment {owner}")
    units = units_of([(line.sku, line.quantity) for line in lines])
    cancelled = shipment["status"] == "cancelled"
    if cancelled:
        if not units:
            raise ParcelRefused("the parcel carries no units")
        status = "cancelled"
    else:
        group = {
            line["sku"]: line["quantity"]
            for line in await store.order_lines(uow.conn, shipment["order_id"])
            if line["delivery_index"] == shipment["delivery_index"]
        }
        before = await store_shipments.shipment_shipped_units(uow.conn, shipment["shipment_id"])
        status = plan_parcel(group, before, units).status
    held = await store_stock.allocated_to(uow.conn, shipment["order_id"])
    left_before = await store_shipments.order_shipped_units(uow.conn, shipment["order_id"])
    await store_shipments.record_parcel(
        uow.conn, shipment["shipment_id"], shipment["order_id"], tracking_number, carrier, shipped_at, units
    )
    await store_shipments.mark_shipped(uow.conn, shipment["shipment_id"], status, carrier, tracking_number, shipped_at)
    await store_stock.consume_stock(uow.conn, units, from_allocation(units, held, left_before))
    if cancelled:
        await _shipped_after_cancel(
            uow, shipment, carrier, tracking_number, correlation_id=correlation_id, causation_id=causation_id
        )
        return True
    order_lines = await store.order_lines(uow.conn, shipment["order_id"])
    remaining = await store_shipments.unshipped_count(uow.conn, shipment["order_id"])
    uow.publish(
        topics.SHIPPING_EVENTS,
        ShipmentShipped(
            order_id=shipment["order_id"],
            shop_id=order_lines[0]["shop_id"],
            shipment_id=shipment["shipment_id"],
            delivery_index=shipment["delivery_index"],
            carrier=carrier,
            tracking_number=tracking_number,
            shipped_at=shipped_at,
            lines=[ShippedLine(sku=sku, quantity=quantity) for sku, quantity in sorted(units.items())],
            all_shipped=remaining == 0,
            correlation_id=correlation_id,
            causation_id=causation_id,
        ),
    )
    return True


async def _shipped_after_cancel(
    uow: UnitOfWork, shipment: asyncpg.Record, carrier: str, tracking_number: str, *, correlation_id: UUID, causation_id: UUID
) -> None:
    reason = f"shipped after the order was cancelled: goods left without an order ({carrier} {tracking_number})"
    await store_shipments.flag_shipped_after_cancel(uow.conn, shipment["shipment_id"], reason)
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
