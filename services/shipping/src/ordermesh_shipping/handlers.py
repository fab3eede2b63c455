"""One function per message the shipping service consumes."""

from collections import Counter

from ordermesh_contracts import (
    OrderAccepted,
    OrderProgressed,
    ShipmentRequested,
    ShipmentShipped,
    ShippedLine,
    Stage,
    StockAllocated,
    WarehouseShipmentReported,
    topics,
)
from ordermesh_servicekit.consuming import MessageContext, PermanentError

from . import store
from .adapters.warehouse import ShipmentRequest, Warehouse
from .domain.allocation import plan_allocation, shipment_id_for

DEFAULT_CARRIER = "yamato"


class ShippingHandlers:
    """Handlers bound to the warehouse they request shipments from."""

    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse

    async def on_order_accepted(self, order: OrderAccepted, ctx: MessageContext) -> None:
        """Keeps the order's lines, per delivery group, for allocation and shipment."""
        demand: Counter[tuple[int, str, str]] = Counter()
        for index, delivery in enumerate(order.deliveries):
            for line in delivery.lines:
                demand[(index, line.sku, delivery.carrier or DEFAULT_CARRIER)] += line.quantity
        async with ctx.unit_of_work() as uow:
            await store.save_order_lines(
                uow.conn,
                [(order.order_id, order.shop_id, i, sku, qty, carrier) for (i, sku, carrier), qty in demand.items()],
            )

    async def on_order_progressed(self, progressed: OrderProgressed, ctx: MessageContext) -> None:
        """Allocates stock when the order awaits allocation; requests shipments when it is ready to ship."""
        if progressed.to_stage is Stage.AWAITING_ALLOCATION:
            await self._allocate(progressed, ctx)
        elif progressed.to_stage is Stage.READY_TO_SHIP:
            await self._request_shipments(progressed, ctx)

    async def _allocate(self, progressed: OrderProgressed, ctx: MessageContext) -> None:
        async with ctx.unit_of_work() as uow:
            lines = await store.order_lines(uow.conn, progressed.order_id)
            if not lines:
                raise PermanentError(f"no lines known for order {progressed.order_id}")
            if await store.has_allocation(uow.conn, progressed.order_id):
                return
            demand: Counter[str] = Counter()
            for line in lines:
                demand[line["sku"]] += line["quantity"]
            available = await store.lock_available_stock(uow.conn, sorted(demand))
            plan = plan_allocation(dict(demand), available)
            await store.allocate(uow.conn, progressed.order_id, plan.quantities)
            uow.publish(
                topics.SHIPPING_EVENTS,
                StockAllocated(
                    order_id=progressed.order_id,
                    shop_id=progressed.shop_id,
                    allocation=plan.coverage,
                    lines=[ShippedLine(sku=sku, quantity=qty) for sku, qty in sorted(plan.quantities.items())],
                    **progressed.caused(),
                ),
            )

    async def _request_shipments(self, progressed: OrderProgressed, ctx: MessageContext) -> None:
        if await ctx.already_processed():
            return
        async with ctx.intent() as conn:
            lines = await store.order_lines(conn, progressed.order_id)
            groups: dict[int, list] = {}
            for line in lines:
                groups.setdefault(line["delivery_index"], []).append(line)
            for index, group in groups.items():
                await store.create_shipment(
                    conn, shipment_id_for(progressed.order_id, index), progressed.order_id, index, group[0]["carrier"]
                )
        requested = []
        for index, group in sorted(groups.items()):
            shipment_id = shipment_id_for(progressed.order_id, index)
            request_id = await self._warehouse.request_shipment(
                ShipmentRequest(
                    idempotency_key=str(shipment_id),
                    shipment_id=str(shipment_id),
                    order_id=str(progressed.order_id),
                    carrier=group[0]["carrier"],
                    lines=[{"sku": line["sku"], "quantity": line["quantity"]} for line in group],
                )
            )
            requested.append((index, shipment_id, request_id))
        async with ctx.unit_of_work() as uow:
            for index, shipment_id, request_id in requested:
                await store.mark_requested(uow.conn, shipment_id, request_id)
                uow.publish(
                    topics.SHIPPING_EVENTS,
                    ShipmentRequested(
                        order_id=progressed.order_id,
                        shop_id=progressed.shop_id,
                        shipment_id=shipment_id,
                        delivery_index=index,
                        warehouse_request_id=request_id,
                        **progressed.caused(),
                    ),
                )

    async def on_warehouse_shipment_reported(self, report: WarehouseShipmentReported, ctx: MessageContext) -> None:
        """Records a shipment that left the warehouse, takes its units out of stock, and tells everyone."""
        async with ctx.unit_of_work() as uow:
            shipment = await store.lock_shipment(uow.conn, report.shipment_id)
            if shipment is None or shipment["order_id"] != report.order_id:
                raise PermanentError(f"the warehouse reported unknown shipment {report.shipment_id}")
            if shipment["status"] == "shipped":
                return
            await store.mark_shipped(uow.conn, report.shipment_id, report.carrier, report.tracking_number, report.shipped_at)
            shipped: Counter[str] = Counter()
            for line in report.lines:
                shipped[line.sku] += line.quantity
            await store.consume_stock(uow.conn, dict(shipped))
            lines = await store.order_lines(uow.conn, report.order_id)
            remaining = await store.unshipped_count(uow.conn, report.order_id)
            uow.publish(
                topics.SHIPPING_EVENTS,
                ShipmentShipped(
                    order_id=report.order_id,
                    shop_id=lines[0]["shop_id"],
                    shipment_id=report.shipment_id,
                    delivery_index=shipment["delivery_index"],
                    carrier=report.carrier,
                    tracking_number=report.tracking_number,
                    shipped_at=report.shipped_at,
                    lines=report.lines,
                    all_shipped=remaining == 0,
                    **report.caused(),
                ),
            )
