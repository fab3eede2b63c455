"""One function per staff command on `orders.commands.v1`: check, decide in the domain, store, answer."""

from collections.abc import Callable
from uuid import UUID

from ordermesh_contracts import (
    AddTask,
    AddToWatchList,
    BulkUpdateOrders,
    CancelOrder,
    CloseTask,
    Command,
    ConfigureStatuses,
    ConfirmAddress,
    ConfirmDeliveryDate,
    DeliveryChecksConfirmed,
    EditOrder,
    EnterOrder,
    HoldOrder,
    ItemResult,
    MergeOrders,
    ReleaseOrder,
    RemoveFromWatchList,
    ResumeAuto,
    ReturnItems,
    SetChildStatus,
    SetOrderStage,
    SetRules,
    SetShippingFees,
    SplitOrder,
    Stage,
    order_id_for,
    topics,
)
from ordermesh_servicekit.commands import CommandRefused, accept
from ordermesh_servicekit.consuming import (
    MessageContext,
    UnitOfWork,
    describe_validation_error,
)
from pydantic import ValidationError

from . import store, store_fees
from .domain import staff
from .domain.fees import fee_table, fee_table_refusals
from .domain.progress import OrderState, Progress, advance
from .domain.rules import RuleSet
from .domain.staff import FINAL_STAGES
from .domain.statuses import child_status_refusal, complete, status_config_errors
from .domain.tasks import flag_confirmed_by_closing
from .handlers import take_in
from .order_changes import (
    lock_owned_order,
    on_cancel_order,
    on_edit_order,
    on_merge_orders,
    on_split_order,
)
from .returning import on_return_items
from .settling import Decide, publish_progress, recording, settle

SERVICE = "orders"
SHIPPED_OR_LATER = (Stage.SHIPPED, Stage.COMPLETED, Stage.CANCELLED)


async def _change(
    uow: UnitOfWork,
    command: Command,
    order_id: UUID,
    decide: Decide,
    *,
    history: list[tuple[str, dict]] | None = None,
) -> Progress:
    """The one path of every staff command that changes an order: its history entry, then `settle` (the shop's rules
    after the change, progress, a rule's hold, save), then the progress events. A refusal changes nothing."""
    await store.add_history(
        uow.conn, order_id, history or [(command.type, {})], actor=command.issued_by, cause_id=command.event_id
    )
    try:
        order, progress = await settle(
            uow, order_id, decide, cause_id=command.event_id, released_by_staff=isinstance(command, ReleaseOrder)
        )
    except staff.Refusal as refusal:
        raise CommandRefused(*refusal.reasons) from None
    by_hand = isinstance(command, (HoldOrder, ReleaseOrder)) or progress.state.mode != "auto"
    actor = command.issued_by if by_hand else "auto"
    await publish_progress(uow, order_id, order.shop_id, order.external_order_no, command, progress, actor=actor)
    return progress


async def _decide(
    uow: UnitOfWork, command: Command, order_id: UUID, decide: Decide, *, details: dict | None = None, **kwargs
) -> Progress:
    """A staff command on one order, answered with the order's stage and mode."""
    progress = await _change(uow, command, order_id, decide, **kwargs)
    accept(uow, command, SERVICE, details={**(details or {}), "stage": progress.state.stage.value, "mode": progress.state.mode})
    return progress


def _staff_action(decide: Callable[[Command], Decide]):
    async def handle(command, ctx: MessageContext) -> None:
        async with ctx.unit_of_work() as uow:
            order = await lock_owned_order(uow, command, command.order_id)
            await _decide(uow, command, order.order_id, decide(command))

    return handle


on_hold_order = _staff_action(lambda command: staff.hold)
on_release_order = _staff_action(lambda command: staff.release)
on_set_order_stage = _staff_action(lambda command: lambda state: staff.set_stage(state, command.stage))
on_resume_auto = _staff_action(lambda command: staff.resume_auto)


CONFIRMED_CHECKS = {"delivery_date_error": "delivery_date", "label_check_failed": "label"}
"""Task kinds whose closing tells shipping that staff confirmed a failed check (it stops holding the order for it)."""


def _checks_confirmed(uow: UnitOfWork, command: Command, order: store.StoredOrder, checks: list[str]) -> None:
    uow.publish(topics.ORDERS_EVENTS, DeliveryChecksConfirmed(
        order_id=order.order_id, shop_id=order.shop_id, checks=checks, confirmed_by=command.issued_by, **command.caused(),
    ))


async def _confirm(command: Command, ctx: MessageContext, flag: str, task_kinds: list[str], checks: list[str] = ()) -> None:
    async with ctx.unit_of_work() as uow:
        order = await lock_owned_order(uow, command, command.order_id)
        await store.close_tasks_of_kind(uow.conn, order.order_id, task_kinds, closed_by=command.issued_by)
        await _decide(uow, command, order.order_id, lambda state: staff.confirm_flag(state, flag))
        if checks:
            _checks_confirmed(uow, command, order, list(checks))


async def on_confirm_address(command: ConfirmAddress, ctx: MessageContext) -> None:
    """Staff confirmed the address: flag confirmed, address tasks closed, the order moves on if it can."""
    await _confirm(command, ctx, "address", ["address_may_be_wrong"])


async def on_confirm_delivery_date(command: ConfirmDeliveryDate, ctx: MessageContext) -> None:
    """Staff confirmed the delivery date: flag confirmed, date tasks closed, the order moves on if it can."""
    await _confirm(command, ctx, "delivery_date", ["delivery_date_error", "delivery_date_requested"], ["delivery_date"])


async def on_add_task(command: AddTask, ctx: MessageContext) -> None:
    """Adds a staff task; a blocking one keeps an order in review."""
    async with ctx.unit_of_work() as uow:
        order = await lock_owned_order(uow, command, command.order_id)
        if order.state.stage in FINAL_STAGES:
            raise CommandRefused(f"a {order.state.stage.value} order takes no tasks")
        [(task_id, _)] = await store.open_tasks(
            uow.conn, order.order_id, [("staff", command.note, command.blocking)], opened_by=command.issued_by
        )
        await _decide(
            uow, command, order.order_id, recording({}),
            history=[("task opened", {"task_id": task_id, "kind": "staff"})], details={"task_id": task_id},
        )


async def on_close_task(command: CloseTask, ctx: MessageContext) -> None:
    """Closes a task; a check task confirms its flag (and a failed date or label check is confirmed to shipping, which
    stops holding the order for it); the order moves on if nothing else holds it."""
    async with ctx.unit_of_work() as uow:
        order = await lock_owned_order(uow, command, command.order_id)
        closed = await store.close_task(uow.conn, order.order_id, command.task_id, closed_by=command.issued_by, note=command.note)
        if closed is None:
            raise CommandRefused(f"order {order.order_id} has no open task {command.task_id}")
        flag = flag_confirmed_by_closing(closed["kind"])

        def decide(state: OrderState) -> Progress:
            if flag and state.stage not in FINAL_STAGES:
                return staff.confirm_flag(state, flag)
            return advance(state)

        await _decide(uow, command, order.order_id, decide)
        if closed["kind"] in CONFIRMED_CHECKS:
            _checks_confirmed(uow, command, order, [CONFIRMED_CHECKS[closed["kind"]]])


async def on_add_to_watch_list(command: AddToWatchList, ctx: MessageContext) -> None:
    """Watch-lists a customer of the shop."""
    async with ctx.unit_of_work() as uow:
        await store.add_to_watch_list(uow.conn, command.shop_id, command.customer_id, command.reason, command.issued_by)
        accept(uow, command, SERVICE)


async def on_remove_from_watch_list(command: RemoveFromWatchList, ctx: MessageContext) -> None:
    """Takes a customer off the shop's watch list."""
    async with ctx.unit_of_work() as uow:
        if not await store.remove_from_watch_list(uow.conn, command.shop_id, command.customer_id):
            raise CommandRefused(f"customer {command.customer_id} is not on the watch list")
        accept(uow, command, SERVICE)


async def on_bulk_update_orders(command: BulkUpdateOrders, ctx: MessageContext) -> None:
    """Applies the same changes to every listed or matching order; each refusal is reported, the rest succeed."""
    if not command.order_ids and command.filter is None:
        raise CommandRefused("give order ids or a filter")
    changes = command.changes.model_dump(exclude_defaults=True)
    if not changes:
        raise CommandRefused("nothing to change")
    async with ctx.unit_of_work() as uow:
        order_ids = list(command.order_ids)
        if command.filter is not None:
            f = command.filter
            order_ids += await store.find_order_ids(
                uow.conn, command.shop_id, stage=f.stage.value if f.stage else None, child_status=f.child_status,
                created_from=f.created_from, created_to=f.created_to,
            )
        results = []
        for order_id in dict.fromkeys(order_ids):
            order = await store.lock_order(uow.conn, order_id)
            reason = _bulk_refusal(order, command, changes)
            if reason:
                results.append(ItemResult(item=str(order_id), ok=False, reason=reason))
                continue
            await store.update_staff_fields(uow.conn, order_id, changes)
            await _change(
                uow, command, order_id, recording({}), history=[("bulk update", {k: str(v) for k, v in changes.items()})]
            )
            results.append(ItemResult(item=str(order_id), ok=True))
        updated = sum(r.ok for r in results)
        accept(uow, command, SERVICE, results=results, details={"updated": updated, "refused": len(results) - updated})


def _bulk_refusal(order: store.StoredOrder | None, command: BulkUpdateOrders, changes: dict) -> str | None:
    if order is None:
        return "no such order"
    if order.shop_id != command.shop_id:
        return f"order belongs to another shop than {command.shop_id}"
    if order.state.stage in (Stage.COMPLETED, Stage.CANCELLED):
        return f"a {order.state.stage.value} order can't be changed"
    if order.state.stage in SHIPPED_OR_LATER + (Stage.SHIPPING,) and ({"carrier", "ship_date"} & changes.keys()):
        return "carrier and ship date can't change once shipping started"
    return None


async def on_set_rules(command: SetRules, ctx: MessageContext) -> None:
    """Replaces the shop's rules once they validate; an invalid set is refused and the running rules stay."""
    try:
        rule_set = RuleSet.model_validate(command.rule_set)
    except ValidationError as error:
        raise CommandRefused(*describe_validation_error(error)) from None
    async with ctx.unit_of_work() as uow:
        await store.save_rule_set(uow.conn, command.shop_id, rule_set.model_dump(mode="json"), command.issued_by)
        accept(uow, command, SERVICE, details={"rules": len(rule_set.active_rules())})


async def on_configure_statuses(command: ConfigureStatuses, ctx: MessageContext) -> None:
    """Replaces the shop's status groups and child statuses (stages the shop leaves out keep a default group)."""
    groups = [group.model_dump(mode="json") for group in command.groups]
    if errors := status_config_errors(groups):
        raise CommandRefused(*errors)
    async with ctx.unit_of_work() as uow:
        completed = complete(groups)
        await store.save_status_groups(uow.conn, command.shop_id, completed, command.issued_by)
        accept(uow, command, SERVICE, details={"groups": completed})


async def on_set_shipping_fees(command: SetShippingFees, ctx: MessageContext) -> None:
    """Replaces the shop's shipping fee table; unknown prefectures or negative prefecture fees refuse it whole and the
    running table stays."""
    if reasons := fee_table_refusals(command.by_prefecture):
        raise CommandRefused(*reasons)
    table = fee_table(command.fee, command.by_prefecture, command.free_from, command.remote_island_surcharge)
    async with ctx.unit_of_work() as uow:
        await store_fees.save_fee_table(uow.conn, command.shop_id, table, command.issued_by)
        accept(uow, command, SERVICE, details=table.as_json())


async def on_set_child_status(command: SetChildStatus, ctx: MessageContext) -> None:
    """Sets a child status of the order's current stage group; rules that look at the status run after it."""
    async with ctx.unit_of_work() as uow:
        order = await lock_owned_order(uow, command, command.order_id)
        if order.state.stage in FINAL_STAGES:
            raise CommandRefused(f"a {order.state.stage.value} order can't change")
        refusal = child_status_refusal(await store.status_groups(uow.conn, command.shop_id), order.state.stage, command.status)
        if refusal:
            raise CommandRefused(refusal)
        await store.update_staff_fields(uow.conn, order.order_id, {"child_status": command.status})
        await _decide(
            uow, command, order.order_id, recording({}),
            history=[("SetChildStatus", {"status": command.status})], details={"child_status": command.status},
        )


async def on_enter_order(command: EnterOrder, ctx: MessageContext) -> None:
    """A phone or fax order keyed in by staff: the same intake as a shop order, answered with the order id or the reasons."""
    if command.order.shop_id != command.shop_id:
        raise CommandRefused(f"the order is for shop {command.order.shop_id}, not {command.shop_id}")
    order = command.order
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    async with ctx.unit_of_work() as uow:
        if await store.lock_order(uow.conn, order_id) is not None:
            raise CommandRefused(f"order {order.external_order_no} of {order.channel.value} already exists as {order_id}")
        if reasons := await take_in(uow, order.model_copy(update=command.caused()), ctx):
            raise CommandRefused(*reasons)
        accept(uow, command, SERVICE, details={"order_id": str(order_id)})


COMMAND_HANDLERS = {
    HoldOrder: on_hold_order,
    ReleaseOrder: on_release_order,
    SetOrderStage: on_set_order_stage,
    ResumeAuto: on_resume_auto,
    ConfirmAddress: on_confirm_address,
    ConfirmDeliveryDate: on_confirm_delivery_date,
    AddTask: on_add_task,
    CloseTask: on_close_task,
    AddToWatchList: on_add_to_watch_list,
    RemoveFromWatchList: on_remove_from_watch_list,
    BulkUpdateOrders: on_bulk_update_orders,
    SetRules: on_set_rules,
    ConfigureStatuses: on_configure_statuses,
    SetChildStatus: on_set_child_status,
    EnterOrder: on_enter_order,
    CancelOrder: on_cancel_order,
    EditOrder: on_edit_order,
    ReturnItems: on_return_items,
    SplitOrder: on_split_order,
    MergeOrders: on_merge_orders,
    SetShippingFees: on_set_shipping_fees,
}
"""Every staff command the orders service takes."""
