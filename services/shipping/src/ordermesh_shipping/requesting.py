"""Requesting an order's shipments from the warehouse when it is ready to ship, holding back the delivery groups a
failed check stops, and requesting them once staff resolve the check."""

from collections.abc import Awaitable, Callable
from uuid import UUID

import httpx

from ordermesh_contracts import Message, ShipmentHoldReleased, ShipmentRequested, ShipmentRequestFailed, topics
from ordermesh_servicekit.consuming import MessageContext, TransientError, UnitOfWork
from ordermesh_servicekit.tracing import current_traceparent

from . import store, store_holds, store_shipments
from .adapters.warehouse import CSV_LABEL_CARRIERS, ShipmentRequest, Warehouse, WarehouseRejected
from .checks import publish_held
from .domain.allocation import shipment_id_for

Finish = Callable[[UnitOfWork], Awaitable[None]]
"""A last step in the message's unit of work (events or a command's answer)."""


async def request_shipments(
    warehouse: Warehouse,
    ctx: MessageContext,
    *,
    order_id: UUID,
    shop_id: str,
    cause: Message,
    max_attempts: int,
    announce_held: bool = False,
    finish: Finish | None = None,
    released: frozenset[int] = frozenset(),
) -> None:
    """Creates the order's shipments (a group held by a failed check as 'held'), asks the warehouse for each one still
    to request, and records the answers; ShipmentRequested or ShipmentRequestFailed per group, and ShipmentHeld per
    held group when `announce_held`. A cancelled order is requested nothing. A group in `released` was held: its
    request carries a new idempotency key, as an earlier request of it may have been cancelled at the warehouse."""
    if await ctx.already_processed():
        return
    if await store.is_cancelled(ctx.pool, order_id):
        async with ctx.unit_of_work() as uow:
            if finish:
                await finish(uow)
            return
    async with ctx.intent() as conn:
        lines = await store.order_lines(conn, order_id)
        held = await store_holds.held_deliveries(conn, order_id)
        groups: dict[int, list] = {}
        for line in lines:
            groups.setdefault(line["delivery_index"], []).append(line)
        for index, group in groups.items():
            await store_shipments.create_shipment(
                conn, shipment_id_for(order_id, index), order_id, index, group[0]["carrier"], held=index in held,
                correlation_id=cause.correlation_id, traceparent=current_traceparent(),
            )
        cod = {row["delivery_index"]: row["cod_amount"] for row in await store.deliveries(conn, order_id)}
        known = {row["delivery_index"]: row for row in await store_shipments.shipments_of_order(conn, order_id)}
    requested, failed = [], []
    for index, group in sorted(groups.items()):
        if known[index]["status"] == "requested":
            # Already at the warehouse, perhaps with lines an edit changed since: its request stands as it is.
            requested.append((index, known[index]["shipment_id"], known[index]["warehouse_request_id"]))
            continue
        if known[index]["status"] != "requesting":
            continue
        shipment_id = shipment_id_for(order_id, index)
        carrier = group[0]["carrier"]
        request = ShipmentRequest(
            idempotency_key=f"{shipment_id}:released-{cause.event_id}" if index in released else str(shipment_id),
            shipment_id=str(shipment_id),
            order_id=str(order_id),
            carrier=carrier,
            lines=[{"sku": line["sku"], "quantity": line["quantity"]} for line in group],
            report_shipped=carrier not in CSV_LABEL_CARRIERS,
            cash_on_delivery=cod.get(index),
        )
        try:
            requested.append((index, shipment_id, await warehouse.request_shipment(request)))
        except WarehouseRejected as rejected:
            attempts = await _count_failure(ctx, shipment_id, str(rejected))
            failed.append((index, shipment_id, attempts, str(rejected)))
        except (TransientError, httpx.TransportError) as error:
            reason = f"{type(error).__name__}: {error}"[:500]
            attempts = await _count_failure(ctx, shipment_id, reason)
            if attempts < max_attempts:
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
                    order_id=order_id, shop_id=shop_id, shipment_id=shipment_id, delivery_index=index,
                    warehouse_request_id=request_id, **cause.caused(),
                ),
            )
        for index, shipment_id, attempts, reason in failed:
            await store_shipments.mark_request_failed(uow.conn, shipment_id)
            uow.publish(
                topics.SHIPPING_EVENTS,
                ShipmentRequestFailed(
                    order_id=order_id, shop_id=shop_id, shipment_id=shipment_id, delivery_index=index,
                    attempts=attempts, reason=reason, **cause.caused(),
                ),
            )
        if announce_held:
            for index, failures in sorted(held.items()):
                if known[index]["status"] == "held":
                    publish_held(uow, order_id, shop_id, index, failures, cause.caused())
        if finish:
            await finish(uow)


async def release_and_request(
    warehouse: Warehouse,
    ctx: MessageContext,
    *,
    order_id: UUID,
    shop_id: str,
    cause: Message,
    released: dict[int, str],
    how: str,
    max_attempts: int,
    finish: Finish | None = None,
) -> None:
    """After the caller lifted the holds of `released` groups (index → carrier) in its intent: announces each release
    and requests the groups' shipments if the order already reached the warehouse stage (a held shipment exists)."""
    async with ctx.intent() as conn:
        await store_holds.release_held_shipments(conn, order_id, sorted(released))
        waiting = any(row["status"] == "requesting" for row in await store_shipments.shipments_of_order(conn, order_id))
        still_held = len(await store_holds.held_deliveries(conn, order_id))

    async def announce(uow: UnitOfWork) -> None:
        for index, carrier in sorted(released.items()):
            uow.publish(
                topics.SHIPPING_EVENTS,
                ShipmentHoldReleased(
                    order_id=order_id, shop_id=shop_id, delivery_index=index, how=how, carrier=carrier,
                    still_held=still_held, **cause.caused(),
                ),
            )
        if finish:
            await finish(uow)

    if waiting:
        await request_shipments(
            warehouse, ctx, order_id=order_id, shop_id=shop_id, cause=cause, max_attempts=max_attempts, finish=announce,
            released=frozenset(released),
        )
        return
    async with ctx.unit_of_work() as uow:
        await announce(uow)


async def _count_failure(ctx: MessageContext, shipment_id, reason: str) -> int:
    async with ctx.intent() as conn:
        return await store_shipments.record_request_failure(conn, shipment_id, reason)
