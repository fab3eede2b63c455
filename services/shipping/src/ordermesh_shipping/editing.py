"""Honouring an order edit: allocation follows the new quantities, unshipped warehouse requests are cancelled and
requested again with the new lines, and deliveries that already left are refused."""

from uuid import UUID


from ordermesh_contracts import (
    OrderEdited,
    PaymentMethod,
    ShipmentHoldReleased,
    ShipmentRequestFailed,
    ShippedLine,
    ShippingEditApplied,
    ShippingEditRefused,
    topics,
)
from ordermesh_servicekit.consuming import MessageContext, PermanentError, TransientError, UnitOfWork

from . import store, store_holds, store_shipments, store_stock
from .accepting import delivery_row
from .adapters.warehouse import CSV_LABEL_CARRIERS, ShipmentRequest, Warehouse, WarehouseRejected
from .checks import DEFAULT_CARRIER, check_groups, publish_checks, publish_held
from .domain.editing import (
    SHIPPED_STATUSES,
    GroupPlan,
    after_warehouse,
    changed_groups,
    held_back,
    demand_of,
    effective_lines,
    group_lines,
    net_lines,
    plan_groups,
    StockPlan,
    plan_stock,
)


async def apply_order_edit(warehouse: Warehouse, edited: OrderEdited, ctx: MessageContext, *, max_attempts: int) -> None:
    """Applies the edit and answers ShippingEditApplied, plus ShippingEditRefused per delivery that can't follow.

    Warehouse calls come first, outside the transaction (a repeat is harmless: cancelling a cancelled request
    is a no-op and the new request carries an idempotency key of this edit); the outcome is then decided on the
    locked shipments, since a shipment may have shipped meanwhile. A cancelled order ignores edits.
    """
    if await ctx.already_processed():
        return
    order_id = edited.order_id
    async with ctx.intent() as conn:
        cancelled = await store.is_cancelled(conn, order_id)
        rows = await store.order_lines(conn, order_id)
        shipments = {row["delivery_index"]: row for row in await store_shipments.shipments_of_order(conn, order_id)}
        cod = {row["delivery_index"]: row["cod_amount"] for row in await store.deliveries(conn, order_id)}
    if cancelled:
        async with ctx.unit_of_work():
            return
    if not rows:
        raise PermanentError(f"no lines known for edited order {order_id}")
    current = {(row["delivery_index"], row["sku"]): row["quantity"] for row in rows}
    edited_lines = net_lines([[(line.sku, line.quantity) for line in group.lines] for group in edited.deliveries])
    new_cod = _cod_amounts(edited)
    changed = sorted(set(changed_groups(current, edited_lines)) | {i for i in new_cod if i in cod and cod[i] != new_cod[i]})
    statuses = {index: row["status"] for index, row in shipments.items()}
    holds = await _holds_after_edit(ctx, edited, changed, statuses)
    plan, to_hold, unheld = held_back(plan_groups(changed, statuses, edited_lines), holds, statuses, edited_lines)

    failures = await _cancel_at_warehouse(warehouse, ctx, plan, shipments, max_attempts)
    request_ids, request_failures = {}, {}
    for index in plan.to_reissue:
        if failures.get(index) is not None:
            continue
        row = shipments[index]
        request = ShipmentRequest(
            idempotency_key=f"{row['shipment_id']}:edit-{edited.edit_no}",
            shipment_id=str(row["shipment_id"]),
            order_id=str(order_id),
            carrier=row["carrier"],
            lines=[{"sku": sku, "quantity": units} for sku, units in sorted(group_lines(edited_lines, index).items())],
            report_shipped=row["carrier"] not in CSV_LABEL_CARRIERS,
            cash_on_delivery=new_cod.get(index),
        )
        try:
            request_ids[index] = await warehouse.request_shipment(request)
        except WarehouseRejected as rejected:
            request_failures[index] = (await _count_request_failure(ctx, row["shipment_id"], str(rejected)), str(rejected))
        except TransientError as error:
            reason = f"{type(error).__name__}: {error}"[:500]
            attempts = await _count_request_failure(ctx, row["shipment_id"], reason)
            if attempts < max_attempts:
                raise
            request_failures[index] = (attempts, reason)

    async with ctx.unit_of_work() as uow:
        locked = {row["delivery_index"]: row for row in await store_shipments.lock_shipments_of_order(uow.conn, order_id)}
        final = after_warehouse(plan, failures, {index: row["status"] for index, row in locked.items()})
        refused = set(final.refused)
        lines = effective_lines(current, edited_lines, refused)
        demand = demand_of(lines)
        await store_stock.lock_stock_rows(uow.conn, sorted(set(demand) | {sku for _, sku in current}))
        allocation_request = await store_stock.lock_allocation_request(uow.conn, order_id)
        await _record_lines(uow, edited, rows, edited_lines, [i for i in changed if i not in refused], known=set(cod))
        for index, amount in new_cod.items():
            if index not in refused:
                await store.set_cod_amount(uow.conn, order_id, index, amount)
        allocated = await store_stock.allocated_to(uow.conn, order_id)
        adjust = edited.adjust_stock and allocation_request is not None
        available = await store_stock.lock_available_stock(uow.conn, sorted(demand)) if adjust else {}
        stock = plan_stock(demand, allocated, available, adjust=adjust)
        await store_stock.release_allocation(uow.conn, order_id, stock.release)
        await store_stock.allocate(uow.conn, order_id, stock.allocate)
        if allocation_request is not None:
            await store_stock.save_allocation_request(
                uow.conn, order_id, edited.shop_id, allocation_request["requested_at"], stock.coverage,
                allocation_request["correlation_id"],
            )
        emptied_held = [i for i in changed if statuses.get(i) == "held" and not group_lines(edited_lines, i)]
        await store_shipments.mark_cancelled(uow.conn, [locked[i]["shipment_id"] for i in [*final.to_withdraw, *emptied_held]])
        for index, request_id in request_ids.items():
            if index not in refused:
                await store_shipments.mark_reissued(uow.conn, locked[index]["shipment_id"], request_id)
        await _record_request_failures(uow, edited, locked, request_failures, refused)
        for index in to_hold:
            if index not in refused:
                await store_holds.hold_shipment(uow.conn, locked[index]["shipment_id"])
                publish_held(uow, order_id, edited.shop_id, index, holds[index], edited.caused())
        _publish_released(uow, edited, [i for i in unheld if i in request_ids and i not in refused], locked)
        applied = [i for i in changed if i not in refused]
        _publish_answers(uow, edited, final, stock, applied=bool(applied) or not refused, reissued=len([i for i in request_ids if i not in refused]))
        await _recheck(uow, edited, locked, applied=applied)


async def _holds_after_edit(ctx: MessageContext, edited: OrderEdited, changed: list[int], statuses: dict[int, str]) -> dict:
    """What would hold each changed, unshipped delivery group once edited (checked before the warehouse is asked)."""
    groups = {
        index: edited.deliveries[index]
        for index in changed
        if index < len(edited.deliveries)
        and statuses.get(index) not in SHIPPED_STATUSES | {"cancelled"}
        and any(line.quantity > 0 for line in edited.deliveries[index].lines)
    }
    if not groups:
        return {}
    async with ctx.intent() as conn:
        _, holds = await check_groups(
            conn, order_id=edited.order_id, shop_id=edited.shop_id, now=edited.occurred_at, groups=groups,
            cash_on_delivery=edited.payment.method is PaymentMethod.CASH_ON_DELIVERY,
        )
        return holds


def _publish_released(uow: UnitOfWork, edited: OrderEdited, indices: list[int], locked: dict) -> None:
    for index in indices:
        uow.publish(
            topics.SHIPPING_EVENTS,
            ShipmentHoldReleased(
                order_id=edited.order_id, shop_id=edited.shop_id, delivery_index=index, how="rechecked",
                carrier=locked[index]["carrier"], still_held=0, **edited.caused(),
            ),
        )


async def _cancel_at_warehouse(
    warehouse: Warehouse, ctx: MessageContext, plan: GroupPlan, shipments: dict, max_attempts: int
) -> dict[int, str | None]:
    failures: dict[int, str | None] = {}
    for index in plan.to_cancel:
        row = shipments[index]
        try:
            await warehouse.cancel_shipment(row["warehouse_request_id"])
            failures[index] = None
        except WarehouseRejected as rejected:
            failures[index] = str(rejected)
        except TransientError as error:
            reason = f"{type(error).__name__}: {error}"[:500]
            async with ctx.intent() as conn:
                attempts = await store_shipments.record_cancel_failure(conn, row["shipment_id"], reason)
            if attempts < max_attempts:
                raise
            failures[index] = f"{reason} (after {attempts} attempts)"
    return failures


async def _count_request_failure(ctx: MessageContext, shipment_id: UUID, reason: str) -> int:
    async with ctx.intent() as conn:
        return await store_shipments.record_request_failure(conn, shipment_id, reason)


def _cod_amounts(edited: OrderEdited) -> dict[int, int | None]:
    """What the carrier collects per delivery group: the new total on the first group, for cash on delivery only."""
    if edited.payment.method is not PaymentMethod.CASH_ON_DELIVERY:
        return {}
    return {0: edited.charges.total}


async def _record_lines(
    uow: UnitOfWork, edited: OrderEdited, rows: list, edited_lines: dict, groups: list[int], *, known: set[int]
) -> None:
    carriers = {row["delivery_index"]: row["carrier"] for row in rows}
    names = {line.sku: (line.name, line.unit_price) for group in edited.deliveries for line in group.lines}
    for index in groups:
        delivery = edited.deliveries[index] if index < len(edited.deliveries) else None
        carrier = carriers.get(index) or (delivery.carrier if delivery and delivery.carrier else DEFAULT_CARRIER)
        lines = [(sku, units, *names[sku]) for sku, units in sorted(group_lines(edited_lines, index).items())]
        await store.replace_group_lines(uow.conn, edited.order_id, edited.shop_id, index, carrier, lines)
        if delivery is not None and index not in known:
            await store.save_deliveries(
                uow.conn, edited.order_id, edited.shop_id, payment_method=edited.payment.method.value,
                currency=edited.currency, accepted_at=edited.occurred_at,
                groups=[delivery_row(index, delivery, carrier=carrier, cod_amount=None)],
            )


async def _record_request_failures(uow: UnitOfWork, edited: OrderEdited, locked: dict, failures: dict, refused: set[int]) -> None:
    """A group whose old request was cancelled but whose new one the warehouse never took waits for staff."""
    for index, (attempts, reason) in sorted(failures.items()):
        if index in refused:
            continue
        shipment_id = locked[index]["shipment_id"]
        await store_shipments.mark_reissue_failed(uow.conn, shipment_id)
        uow.publish(
            topics.SHIPPING_EVENTS,
            ShipmentRequestFailed(
                order_id=edited.order_id,
                shop_id=edited.shop_id,
                shipment_id=shipment_id,
                delivery_index=index,
                attempts=attempts,
                reason=reason,
                **edited.caused(),
            ),
        )


def _publish_answers(uow: UnitOfWork, edited: OrderEdited, plan: GroupPlan, stock: StockPlan, *, applied: bool, reissued: int) -> None:
    """ShippingEditApplied unless every changed delivery was refused, then one ShippingEditRefused per refused one
    (last, so the order's flag ends on the refusal staff must see)."""
    if applied:
        uow.publish(
            topics.SHIPPING_EVENTS,
            ShippingEditApplied(
                order_id=edited.order_id,
                shop_id=edited.shop_id,
                edit_no=edited.edit_no,
                stock_adjusted=edited.adjust_stock,
                allocation=stock.coverage,
                released=[ShippedLine(sku=sku, quantity=units) for sku, units in sorted(stock.release.items())],
                allocated=[ShippedLine(sku=sku, quantity=units) for sku, units in sorted(stock.allocate.items())],
                shipments_reissued=reissued,
                **edited.caused(),
            ),
        )
    for index, reason in sorted(plan.refused.items()):
        uow.publish(
            topics.SHIPPING_EVENTS,
            ShippingEditRefused(
                order_id=edited.order_id, shop_id=edited.shop_id, edit_no=edited.edit_no, delivery_index=index,
                reason=reason, **edited.caused(),
            ),
        )


async def _recheck(uow: UnitOfWork, edited: OrderEdited, locked: dict, *, applied: list[int]) -> None:
    """Runs the date and label checks again on the unshipped delivery groups when the edit changed their lines."""
    if not applied:
        return
    unshipped = {
        index: group
        for index, group in enumerate(edited.deliveries)
        if locked.get(index) is None or locked[index]["status"] not in SHIPPED_STATUSES | {"cancelled"}
    }
    unshipped = {index: group for index, group in unshipped.items() if any(line.quantity > 0 for line in group.lines)}
    if unshipped:
        await publish_checks(
            uow,
            order_id=edited.order_id,
            shop_id=edited.shop_id,
            now=edited.occurred_at,
            groups=unshipped,
            cash_on_delivery=edited.payment.method is PaymentMethod.CASH_ON_DELIVERY,
            cause=edited.caused(),
        )
