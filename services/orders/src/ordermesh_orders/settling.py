"""The one step every change of a stored order ends with: rules, progress, a rule's hold, save — and the progress
events that announce it."""

from collections.abc import Awaitable, Callable
from uuid import UUID

from ordermesh_contracts import (
    Message,
    OrderAccepted,
    OrderCompleted,
    OrderProgressed,
    Stage,
    topics,
)
from ordermesh_servicekit.consuming import UnitOfWork

from . import store
from .domain.progress import OrderState, Progress, record_flags
from .domain.rules import OrderFacts, facts_of
from .domain.staff import hold_after
from .rule_runner import apply_firing, apply_waiting_statuses, planned_firing

Decide = Callable[[OrderState], Progress]
"""What a change does to the order's progress (a pure domain function; may raise `staff.Refusal`)."""

SaveState = Callable[..., Awaitable[None]]
"""How `settle` saves the order: `store.save_state`'s signature (the default), or a batch's save for later."""


def recording(changes: dict[str, str]) -> Decide:
    """The change of an event or staff action that only records flags (none for a change of staff fields)."""
    return lambda state: record_flags(state, changes)


async def settle(
    uow: UnitOfWork,
    order_id: UUID,
    decide: Decide,
    *,
    cause_id: UUID,
    released_by_staff: bool = False,
    locked: store.StoredOrder | None = None,
    history: Callable[[Progress], list[tuple[str, str, dict[str, str]]]] | None = None,
    save: SaveState = store.save_state,
) -> tuple[store.StoredOrder, Progress]:
    """Decides the order's new progress, runs the shop's rules on the order as it is after the change, holds it where
    it stops if a rule asked, and saves it. Returns the order as read and its progress.

    `decide` runs first on the order as the caller left it (a refusal leaves everything unchanged); when rules
    fired it runs again on the re-read order, as they may have opened blocking tasks. A hold a rule asks for is
    dropped (and the drop written to the history) when staff released the order by hand in this very command:
    the explicit release wins, and the rule, once-only like every rule, does not hold it later either.
    A rule's child status waiting for a stage is set when the order reaches it, before the rules run.
    `locked`: the order as the caller locked it in this unit of work, if nothing changed it since (read once).
    `history`: the history entries of the change given its progress, saved with the order in one statement.
    `save`: how the order is saved (in a batch, with the batch's other orders at its end: `BatchOrders.saving`)."""
    order = locked or await store.lock_order(uow.conn, order_id)
    progress = decide(order.state)
    if order.waiting_statuses:
        await apply_waiting_statuses(uow, order_id, progress.state.stage, cause_id)
    fired, hold_reason = await _run_rules(uow, order, progress.state, cause_id, holds_allowed=not released_by_staff)
    if fired:
        order = await store.lock_order(uow.conn, order_id)
        stage = progress.state.stage
        progress = decide(order.state)
        if progress.state.stage is not stage and order.waiting_statuses:
            await apply_waiting_statuses(uow, order_id, progress.state.stage, cause_id)
    if hold_reason:
        progress = hold_after(progress)
    entries = history(progress) if history is not None else None
    await save(uow.conn, order_id, progress.state, history=entries, cause_id=cause_id)
    return order, progress


def writes_before_saving(order: store.StoredOrder) -> bool:
    """Whether `settle` may write to the order before it saves it: rules to run (they may fire) or child statuses
    waiting for a stage."""
    return order.rule_set is not None or order.waiting_statuses


async def _run_rules(
    uow: UnitOfWork, order: store.StoredOrder, after: OrderState, cause_id: UUID, *, holds_allowed: bool
) -> tuple[bool, str | None]:
    """Fires the shop's rules that now hold and have not fired for the order yet; (whether any fired, hold reason)."""

    async def facts() -> OrderFacts:
        source = await store.order_facts_source(uow.conn, order.order_id)
        accepted = OrderAccepted.model_validate_json(source["snapshot"])
        return facts_of(
            accepted,
            customer_flag=after.flags.get("customer", "normal"),
            child_status=source["child_status"],
            labels=tuple(source["labels"]),
        )

    firing = await planned_firing(uow, order.rule_set, facts, order.order_id)
    hold_reason = await apply_firing(
        uow, order.order_id, order.shop_id, after.stage, firing, cause_id=cause_id,
        holds_allowed=holds_allowed, held_from=after.held_from,
    )
    return bool(firing.rule_ids), hold_reason


async def publish_progress(
    uow: UnitOfWork,
    order_id: UUID,
    shop_id: str,
    external_order_no: str,
    cause: Message,
    progress: Progress,
    *,
    actor: str = "auto",
) -> None:
    """Publishes each stage change (and completion) and records it in the order's history."""
    publish_transitions(uow, order_id, shop_id, external_order_no, cause, progress, actor=actor)
    await store.add_entries(uow.conn, order_id, progress_entries(progress, actor), cause_id=cause.event_id)


def progress_entries(progress: Progress, actor: str = "auto") -> list[tuple[str, str, dict[str, str]]]:
    """The history entries (actor, what, details) of each stage change."""
    return [(actor, "progressed", {"from_stage": f.value, "to_stage": t.value}) for f, t in progress.transitions]


def publish_transitions(
    uow: UnitOfWork,
    order_id: UUID,
    shop_id: str,
    external_order_no: str,
    cause: Message,
    progress: Progress,
    *,
    actor: str = "auto",
) -> None:
    """Publishes each stage change (and completion); the caller records them in the order's history."""
    mode = "manual" if actor != "auto" else "auto"
    for from_stage, to_stage in progress.transitions:
        uow.publish(
            topics.ORDERS_EVENTS,
            OrderProgressed(
                order_id=order_id, shop_id=shop_id, from_stage=from_stage, to_stage=to_stage, mode=mode, **cause.caused()
            ),
        )
        if to_stage is Stage.COMPLETED:
            uow.publish(
                topics.ORDERS_EVENTS,
                OrderCompleted(order_id=order_id, shop_id=shop_id, external_order_no=external_order_no, **cause.caused()),
            )
