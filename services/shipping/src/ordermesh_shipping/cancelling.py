"""Honouring a cancelled order: stop allocating and requesting, cancel warehouse requests, release stock if asked."""

from uuid import UUID

from ordermesh_contracts import OrderCancelled, OrderShippingCancelled, ShipmentCancelFailed, ShippedLine, topics
from ordermesh_servicekit.consuming import MessageContext, TransientError

from . import store, store_shipments, store_stock
from .adapters.warehouse import Warehouse, WarehouseRejected
from .domain.cancellation import ShipmentToCancel, needs_warehouse_cancel, plan_cancellation


async def cancel_order_shipping(
    warehouse: Warehouse, cancelled: OrderCancelled, ctx: MessageContext, *, max_attempts: int
) -> None:
    """Cancels the order's shipping and answers OrderShippingCancelled, or ShipmentCancelFailed per shipment that
    could not be cancelled.

    The order is marked cancelled first, in its own transaction, so that from then on no allocation (a stock
    import topping up waiting orders included) and no shipment request is made for it. Warehouse requests are
    cancelled next (a repeat of the call is harmless); a warehouse that keeps failing is retried up to
    `max_attempts` times, then reported. The outcome is decided again on the locked shipments, since a shipment
    may have shipped meanwhile.
    """
    if await ctx.already_processed():
        return
    async with ctx.intent() as conn:
        await store_stock.lock_allocation_request(conn, cancelled.order_id)
        await store.record_cancellation(
            conn, cancelled.order_id, cancelled.shop_id, cancelled.restore_stock, cancelled.occurred_at, cancelled.event_id
        )
        at_warehouse = [row for row in await store_shipments.shipments_of_order(conn, cancelled.order_id) if needs_warehouse_cancel(row["status"])]
    failures: dict[UUID, str | None] = {}
    for row in at_warehouse:
        try:
            await warehouse.cancel_shipment(row["warehouse_request_id"])
            failures[row["shipment_id"]] = None
        except WarehouseRejected as rejected:
            failures[row["shipment_id"]] = str(rejected)
        except TransientError as error:
            reason = f"{type(error).__name__}: {error}"[:500]
            async with ctx.intent() as conn:
                attempts = await store_shipments.record_cancel_failure(conn, row["shipment_id"], reason)
            if attempts < max_attempts:
                raise
            failures[row["shipment_id"]] = f"{reason} (after {attempts} attempts)"

    async with ctx.unit_of_work() as uow:
        shipments = await store_shipments.lock_shipments_of_order(uow.conn, cancelled.order_id)
        lines = await store.order_lines(uow.conn, cancelled.order_id)
        await store_stock.lock_stock_rows(uow.conn, sorted({line["sku"] for line in lines}))
        allocated = await store_stock.allocated_to(uow.conn, cancelled.order_id)
        plan = plan_cancellation(
            [
                ShipmentToCancel(
                    row["shipment_id"],
                    row["delivery_index"],
                    row["status"],
                    {line["sku"]: line["quantity"] for line in lines if line["delivery_index"] == row["delivery_index"]},
                )
                for row in shipments
            ],
            failures,
            allocated,
            restore_stock=cancelled.restore_stock,
        )
        await store_shipments.mark_cancelled(uow.conn, plan.cancelled)
        await store_stock.release_allocation(uow.conn, cancelled.order_id, plan.release)
        await store_stock.close_allocation_request(uow.conn, cancelled.order_id)
        for failed in plan.failed:
            await store_shipments.mark_cancel_failed(uow.conn, failed.shipment_id, failed.reason)
            uow.publish(
                topics.SHIPPING_EVENTS,
                ShipmentCancelFailed(
                    order_id=cancelled.order_id,
                    shop_id=cancelled.shop_id,
                    shipment_id=failed.shipment_id,
                    delivery_index=failed.delivery_index,
                    reason=failed.reason,
                    stock_released=cancelled.restore_stock,
                    **cancelled.caused(),
                ),
            )
        if not plan.failed:
            uow.publish(
                topics.SHIPPING_EVENTS,
                OrderShippingCancelled(
                    order_id=cancelled.order_id,
                    shop_id=cancelled.shop_id,
                    shipments_cancelled=len(plan.cancelled),
                    stock_released=cancelled.restore_stock,
                    released=[ShippedLine(sku=sku, quantity=qty) for sku, qty in sorted(plan.release.items())],
                    **cancelled.caused(),
                ),
            )
