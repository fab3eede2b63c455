"""Recording that a shipment left: shared by warehouse reports and carrier tracking files."""

from collections import Counter
from datetime import datetime
from uuid import UUID

import asyncpg

from ordermesh_contracts import ShipmentCancelFailed, ShipmentShipped, ShippedLine, topics
from ordermesh_servicekit.consuming import UnitOfWork

from . import store, store_shipments, store_stock
from .domain.allocation import from_allocation


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
) -> None:
    """Marks a (locked) shipment shipped, takes its units out of stock, and publishes ShipmentShipped.

    A shipment cancelled before it left is recorded and flagged (goods left without an order) and answered with
    ShipmentCancelFailed, a task for staff; its units leave stock on hand, and the allocation only as far as the
    cancel kept units set aside for the order (it released them when staff chose to restore stock).
    """
    await store_shipments.mark_shipped(uow.conn, shipment["shipment_id"], carrier, tracking_number, shipped_at)
    shipped: Counter[str] = Counter()
    for line in lines:
        shipped[line.sku] += line.quantity
    held = await store_stock.allocated_to(uow.conn, shipment["order_id"])
    before = await store_shipments.shipped_units(uow.conn, shipment["order_id"], shipment["shipment_id"])
    await store_stock.consume_stock(uow.conn, dict(shipped), from_allocation(dict(shipped), held, before))
    if shipment["status"] == "cancelled":
        await _shipped_after_cancel(
            uow, shipment, carrier, tracking_number, correlation_id=correlation_id, causation_id=causation_id
        )
        return
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
            lines=lines,
            all_shipped=remaining == 0,
            correlation_id=correlation_id,
            causation_id=causation_id,
        ),
    )


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
