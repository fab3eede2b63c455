"""One function per message the shipping service consumes from orders and from the warehouse."""

import httpx

from ordermesh_contracts import (
    OrderAccepted,
    OrderCancelled,
    OrderEdited,
    OrderProgressed,
    PaymentMethod,
    ShipmentDelivered,
    ShipmentRequested,
    ShipmentRequestFailed,
    Stage,
    WarehouseDeliveryReported,
    WarehouseShipmentReported,
    topics,
)
from ordermesh_servicekit.consuming import MessageContext, PermanentError, TransientError
from ordermesh_servicekit.parking import DependencyMissing

from . import store, store_shipments
from .adapters.warehouse import CSV_LABEL_CARRIERS, ShipmentRequest, Warehouse, WarehouseRejected
from .allocating import allocate_order
from .cancelling import cancel_order_shipping
from .checks import DEFAULT_CARRIER, publish_checks
from .domain.allocation import shipment_id_for
from .domain.parcels import ParcelRefused
from .editing import apply_order_edit
from .shipping_out import ship


class ShippingHandlers:
    """Handlers bound to the warehouse they request shipments from."""

    def __init__(self, warehouse: Warehouse, *, max_request_attempts: int = 5) -> None:
        self._warehouse = warehouse
        self._max_request_attempts = max_request_attempts

    async def on_order_accepted(self, order: OrderAccepted, ctx: MessageContext) -> None:
        """Keeps the order's lines and deliveries, checks delivery dates and carrier rules, and says what it found."""
        lines: dict[tuple[int, str], list] = {}
        for index, delivery in enumerate(order.deliveries):
            carrier = delivery.carrier or DEFAULT_CARRIER
            for line in delivery.lines:
                row = lines.setdefault((index, line.sku), [order.order_id, order.shop_id, index, line.sku, 0, carrier, line.name, line.unit_price])
                row[4] += line.quantity
        cash_on_delivery = order.payment.method is PaymentMethod.CASH_ON_DELIVERY
        deliveries = [
            (
                order.order_id, index, order.shop_id, delivery.address.model_dump_json(), delivery.requested_date,
                delivery.time_slot, delivery.carrier or DEFAULT_CARRIER, order.payment.method.value,
                order.charges.total if cash_on_delivery and index == 0 else None, order.currency, order.occurred_at,
            )
            for index, delivery in enumerate(order.deliveries)
        ]
        async with ctx.unit_of_work() as uow:
            await store.save_order_lines(uow.conn, [tuple(row) for row in lines.values()])
            await store.save_deliveries(uow.conn, deliveries)
            await publish_checks(
                uow,
                order_id=order.order_id,
                shop_id=order.shop_id,
                now=order.occurred_at,
                groups=dict(enumerate(order.deliveries)),
                cash_on_delivery=cash_on_delivery,
                cause=order.caused(),
            )

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
                )
        elif progressed.to_stage is Stage.READY_TO_SHIP:
            await self._request_shipments(progressed, ctx)

    async def on_order_cancelled(self, cancelled: OrderCancelled, ctx: MessageContext) -> None:
        """Cancels the order's unshipped shipments (at the warehouse too) and releases its stock if staff asked."""
        await cancel_order_shipping(self._warehouse, cancelled, ctx, max_attempts=self._max_request_attempts)

    async def on_order_edited(self, edited: OrderEdited, ctx: MessageContext) -> None:
        """Makes allocation and unshipped warehouse requests follow the edit; answers ShippingEditApplied or
        ShippingEditRefused per delivery that already left."""
        await apply_order_edit(self._warehouse, edited, ctx, max_attempts=self._max_request_attempts)

    async def _request_shipments(self, progressed: OrderProgressed, ctx: MessageContext) -> None:
        if await ctx.already_processed():
            return
        if await store.is_cancelled(ctx.pool, progressed.order_id):
            async with ctx.unit_of_work():
                return
        async with ctx.intent() as conn:
            lines = await store.order_lines(conn, progressed.order_id)
            groups: dict[int, list] = {}
            for line in lines:
                groups.setdefault(line["delivery_index"], []).append(line)
            for index, group in groups.items():
                await store_shipments.create_shipment(
                    conn, shipment_id_for(progressed.order_id, index), progressed.order_id, index, group[0]["carrier"]
                )
            cod = {row["delivery_index"]: row["cod_amount"] for row in await store.deliveries(conn, progressed.order_id)}
            known = {row["delivery_index"]: row for row in await store_shipments.shipments_of_order(conn, progressed.order_id)}
        requested, failed = [], []
        for index, group in sorted(groups.items()):
            if known[index]["status"] == "requested":
                # Already at the warehouse, perhaps with lines an edit changed since: its request stands as it is.
                requested.append((index, known[index]["shipment_id"], known[index]["warehouse_request_id"]))
                continue
            if known[index]["status"] != "requesting":
                continue
            shipment_id = shipment_id_for(progressed.order_id, index)
            carrier = group[0]["carrier"]
            request = ShipmentRequest(
                idempotency_key=str(shipment_id),
                shipment_id=str(shipment_id),
                order_id=str(progressed.order_id),
                carrier=carrier,
                lines=[{"sku": line["sku"], "quantity": line["quantity"]} for line in group],
                report_shipped=carrier not in CSV_LABEL_CARRIERS,
                cash_on_delivery=cod.get(index),
            )
            try:
                requested.append((index, shipment_id, await self._warehouse.request_shipment(request)))
            except WarehouseRejected as rejected:
                attempts = await self._count_failure(ctx, shipment_id, str(rejected))
                failed.append((index, shipment_id, attempts, str(rejected)))
            except (TransientError, httpx.TransportError) as error:
                reason = f"{type(error).__name__}: {error}"[:500]
                attempts = await self._count_failure(ctx, shipment_id, reason)
                if attempts < self._max_request_attempts:
                    raise
                failed.append((index, shipment_id, attempts, reason))
        async with ctx.unit_of_work() as uow:
            for index, shipment_id, request_id in requested:
                if not await store_shipments.mark_requested(uow.conn, shipment_id, request_id):
                    # The parcel left (or was cancelled) while the warehouse was slow to answer: that news is out already.
                    continue
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
            for index, shipment_id, attempts, reason in failed:
                await store_shipments.mark_request_failed(uow.conn, shipment_id)
                uow.publish(
                    topics.SHIPPING_EVENTS,
                    ShipmentRequestFailed(
                        order_id=progressed.order_id,
                        shop_id=progressed.shop_id,
                        shipment_id=shipment_id,
                        delivery_index=index,
                        attempts=attempts,
                        reason=reason,
                        **progressed.caused(),
                    ),
                )

    async def _count_failure(self, ctx: MessageContext, shipment_id, reason: str) -> int:
        async with ctx.intent() as conn:
            return await store_shipments.record_request_failure(conn, shipment_id, reason)

    async def on_warehouse_shipment_reported(self, report: WarehouseShipmentReported, ctx: MessageContext) -> None:
        """Books a parcel that left the warehouse (once per tracking number), takes its units out of stock, and
        tells everyone; a parcel the shipment can't hold is dead-lettered with the reason."""
        async with ctx.unit_of_work() as uow:
            shipment = await store_shipments.lock_shipment(uow.conn, report.shipment_id)
            if shipment is None or shipment["order_id"] != report.order_id:
                raise PermanentError(f"the warehouse reported unknown shipment {report.shipment_id}")
            try:
                await ship(
                    uow,
                    shipment,
                    carrier=report.carrier,
                    tracking_number=report.tracking_number,
                    shipped_at=report.shipped_at,
                    lines=report.lines,
                    **report.caused(),
                )
            except ParcelRefused as refused:
                raise PermanentError(
                    f"parcel {report.tracking_number} of shipment {report.shipment_id} refused: {refused}"
                ) from None

    async def on_delivery_reported(self, report: WarehouseDeliveryReported, ctx: MessageContext) -> None:
        """Records a delivered shipment (with cash collected on delivery) and tells everyone."""
        async with ctx.unit_of_work() as uow:
            shipment = await store_shipments.lock_shipment(uow.conn, report.shipment_id)
            if shipment is None or shipment["order_id"] != report.order_id:
                raise PermanentError(f"the warehouse reported delivery of unknown shipment {report.shipment_id}")
            if shipment["status"] == "delivered":
                return
            if shipment["status"] in ("requesting", "requested"):
                # Two callbacks taken by two replicas reach the topic in either order: wait for the shipment report.
                raise DependencyMissing(report.order_id, f"shipment {report.shipment_id} reported delivered before shipped")
            if shipment["status"] != "shipped":
                raise PermanentError(f"shipment {report.shipment_id} reported delivered while {shipment['status']}")
            await store_shipments.mark_delivered(uow.conn, report.shipment_id, report.delivered_at, report.cash_collected)
            lines = await store.order_lines(uow.conn, report.order_id)
            uow.publish(
                topics.SHIPPING_EVENTS,
                ShipmentDelivered(
                    order_id=report.order_id,
                    shop_id=lines[0]["shop_id"],
                    shipment_id=report.shipment_id,
                    delivery_index=shipment["delivery_index"],
                    delivered_at=report.delivered_at,
                    cash_collected=report.cash_collected,
                    all_delivered=await store_shipments.undelivered_count(uow.conn, report.order_id) == 0,
                    **report.caused(),
                ),
            )

