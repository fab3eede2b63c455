"""Staff commands that change what an order contains — edit, split, merge, cancel — each committed as one unit and
announced with the events every other service honours."""

from uuid import UUID

from ordermesh_contracts import (
    CancelOrder,
    Command,
    EditOrder,
    MergeOrders,
    OrderEdited,
    OrdersMerged,
    OrderSplit,
    SplitOrder,
    order_id_for,
    topics,
    utc_now,
)
from ordermesh_servicekit.commands import CommandRefused, accept
from ordermesh_servicekit.consuming import MessageContext, UnitOfWork

from . import store, store_edits, store_fees
from .adapters.postal import japan_post_lookup
from .cancelling import cancel_order
from .domain import staff
from .domain.edits import (
    edit_refusals,
    fully_shipped_deliveries,
    plan_edit,
)
from .domain.intake import new_address_checks
from .domain.split_merge import (
    merge_refusals,
    merged_order,
    plan_split,
    split_off_order,
)
from .editing import commit_edit
from .handlers import open_tasks, take_in

SERVICE = "orders"


async def lock_owned_order(uow: UnitOfWork, command: Command, order_id: UUID) -> store.StoredOrder:
    """Locks the order the command is about; refuses an unknown order or another shop's."""
    order = await store.lock_order(uow.conn, order_id)
    if order is None:
        raise CommandRefused(f"no order {order_id}")
    if order.shop_id != command.shop_id:
        raise CommandRefused(f"order {order_id} does not belong to shop {command.shop_id}")
    return order


async def _editable(uow: UnitOfWork, order: store.StoredOrder):
    if reasons := edit_refusals(order.state.stage, order.state.payment_method, order.state.flags):
        raise CommandRefused(*reasons)
    current, paid, edit_count = await store_edits.edit_basis(uow.conn, order.order_id)
    shipped = await store_edits.shipped_units(uow.conn, order.order_id)
    return current, paid, edit_count, shipped, fully_shipped_deliveries(current.deliveries, shipped)


async def _planned_async(step):
    try:
        return await step
    except staff.Refusal as refusal:
        raise CommandRefused(*refusal.reasons) from None


def _planned(plan):
    try:
        return plan()
    except staff.Refusal as refusal:
        raise CommandRefused(*refusal.reasons) from None


def _edit_details(edited: OrderEdited) -> dict:
    return {"edit_no": edited.edit_no, "previous_total": edited.previous_charges.total, "total": edited.charges.total,
            "balance": edited.balance}


async def on_edit_order(command: EditOrder, ctx: MessageContext) -> None:
    """Commits a staff edit as one unit and tells every service (one `OrderEdited` with the diff, the new totals and
    the balance); a refused edit is answered with every reason and changes nothing."""
    async with ctx.unit_of_work() as uow:
        order = await lock_owned_order(uow, command, command.order_id)
        current, paid, edit_count, shipped, shipped_deliveries = await _editable(uow, order)
        plan = _planned(lambda: plan_edit(current.deliveries, current.charges, command, shipped, shipped_deliveries))
        edited = await commit_edit(
            uow, order, current, paid, edit_count + 1, plan, command,
            adjust_stock=command.adjust_stock, notify_customer=command.notify_customer, reason=command.reason,
        )
        accept(uow, command, SERVICE, details=_edit_details(edited))


async def on_split_order(command: SplitOrder, ctx: MessageContext) -> None:
    """Moves unshipped units into a new delivery group (an edit of the order) or into a new order (an edit of the
    source plus the new order's intake); refused whole with every reason."""
    async with ctx.unit_of_work() as uow:
        order = await lock_owned_order(uow, command, command.order_id)
        current, paid, edit_count, shipped, shipped_deliveries = await _editable(uow, order)
        plan, lines = _planned(lambda: plan_split(current.deliveries, current.charges, command, shipped, shipped_deliveries))
        edit_no = edit_count + 1
        new_order_id = None
        if command.into == "order":
            submitted = split_off_order(current, command, lines, edit_no, utc_now()).model_copy(update=command.caused())
            new_order_id = order_id_for(submitted.shop_id, submitted.channel.value, submitted.external_order_no)
            if reasons := await take_in(uow, submitted, ctx):
                raise CommandRefused(*(f"the new order: {reason}" for reason in reasons))
        checks, tasks = {}, []
        if command.into == "delivery" and command.address is not None:
            label = f"delivery {len(current.deliveries)}"
            checks, tasks = new_address_checks(command.address, label, japan_post_lookup)
            await open_tasks(uow, order.order_id, tasks, actor=command.issued_by, cause_id=command.event_id)
        edited = await commit_edit(
            uow, order, current, paid, edit_no, plan, command,
            adjust_stock=True, notify_customer=False, reason=f"split into a new {command.into}", extra_flags=checks,
        )
        uow.publish(topics.ORDERS_EVENTS, OrderSplit(
            order_id=order.order_id, shop_id=order.shop_id, into=command.into, new_order_id=new_order_id,
            new_delivery_index=len(current.deliveries) if command.into == "delivery" else None,
            edit_no=edit_no, split_by=command.issued_by, **command.caused(),
        ))
        details = _edit_details(edited) | {"new_order_id": str(new_order_id) if new_order_id else None}
        accept(uow, command, SERVICE, details=details)


async def on_merge_orders(command: MergeOrders, ctx: MessageContext) -> None:
    """Merges unshipped orders of one customer and destination into a new order and cancels the sources (stock
    released, payment reversed, no mail); refused whole with every reason."""
    if len(set(command.order_ids)) != len(command.order_ids):
        raise CommandRefused("an order is listed twice")
    async with ctx.unit_of_work() as uow:
        sources, reasons = [], []
        for order_id in sorted(command.order_ids):  # one lock order for every merge, so two merges can't deadlock
            order = await lock_owned_order(uow, command, order_id)
            current, paid, _, shipped, _ = await _editable(uow, order)
            if shipped or order.state.stage.value in ("shipping", "shipped"):
                reasons.append(f"order {order_id} has started shipping")
            if paid:
                reasons.append(f"order {order_id} has money collected ({paid}): refund it first")
            sources.append((order, current))
        sources.sort(key=lambda source: command.order_ids.index(source[0].order_id))
        reasons += merge_refusals([current for _, current in sources])
        if reasons:
            raise CommandRefused(*reasons)
        suffix = f"-M{command.event_id.hex[:6]}"
        table = await store_fees.fee_table(uow.conn, command.shop_id) if command.shipping_fee is None else None
        merged = _planned(lambda: merged_order([c for _, c in sources], command.shipping_fee, suffix, utc_now(), table))
        merged = merged.model_copy(update=command.caused())
        merged_id = order_id_for(merged.shop_id, merged.channel.value, merged.external_order_no)
        if reasons := await take_in(uow, merged, ctx):
            raise CommandRefused(*(f"the merged order: {reason}" for reason in reasons))
        for order, _ in sources:
            await _planned_async(cancel_order(
                uow, order, command, actor=command.issued_by, reason=f"merged into {merged.external_order_no}",
                restore_stock=True, cancel_payment=True, notify_customer=False,
            ))
        uow.publish(topics.ORDERS_EVENTS, OrdersMerged(
            order_id=merged_id, shop_id=command.shop_id, external_order_no=merged.external_order_no,
            source_order_ids=[order.order_id for order, _ in sources], merged_by=command.issued_by, **command.caused(),
        ))
        accept(uow, command, SERVICE, details={"order_id": str(merged_id), "external_order_no": merged.external_order_no,
                                               "shipping_fee": merged.charges.shipping_fee, "total": merged.charges.total})


async def on_cancel_order(command: CancelOrder, ctx: MessageContext) -> None:
    """Cancels a whole unshipped order and tells every service which reversals staff chose."""
    async with ctx.unit_of_work() as uow:
        order = await lock_owned_order(uow, command, command.order_id)
        progress = await _planned_async(cancel_order(
            uow, order, command, actor=command.issued_by, reason=command.reason, restore_stock=command.restore_stock,
            cancel_payment=command.cancel_payment, notify_customer=command.notify_customer,
        ))
        accept(uow, command, SERVICE, details={"stage": progress.state.stage.value, "mode": progress.state.mode})
