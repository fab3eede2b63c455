"""Runs a shop's rules on an order inside the order's unit of work, and records every firing in its history."""

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from ordermesh_contracts import Stage
from ordermesh_servicekit.consuming import UnitOfWork

from . import store
from .domain.rules import Firing, OrderFacts, RuleSet, effects_of, evaluate
from .domain.statuses import due_waiting


async def planned_firing(
    uow: UnitOfWork, raw: dict[str, Any] | None, facts: Callable[[], Awaitable[OrderFacts]], order_id: UUID
) -> Firing:
    """What the shop's rules (`raw`, as stored) would do to the order now (nothing is stored); facts are read only if
    the shop has rules."""
    if raw is None:
        return Firing([], [])
    already = await store.fired_rules(uow.conn, order_id)
    return evaluate(RuleSet.model_validate(raw), await facts(), already)


async def apply_firing(
    uow: UnitOfWork,
    order_id: UUID,
    shop_id: str,
    stage: Stage,
    firing: Firing,
    *,
    cause_id: UUID,
    holds_allowed: bool = True,
    held_from: Stage | None = None,
) -> str | None:
    """Stores what fired rules ask for (status, tasks, memo, labels, carrier, mail text) and marks them fired; returns
    a hold reason if one asks and holds are allowed (a skipped hold is written to the history). A child status of a
    later stage's group waits for the order to reach that stage (`apply_waiting_statuses`)."""
    if not firing.rule_ids:
        return None
    await store.record_firings(uow.conn, order_id, firing.rule_ids)
    groups = await store.status_groups(uow.conn, shop_id)
    effects = effects_of(firing, groups, stage, at_intake=False, holds_allowed=holds_allowed, held_from=held_from)
    await store.wait_for_stage(uow.conn, order_id, [(rule_id, status, later.value) for rule_id, status, later in effects.waiting])
    if effects.staff_fields:
        await store.update_staff_fields(uow.conn, order_id, effects.staff_fields)
    if effects.mail_texts:
        await store.set_mail_texts(uow.conn, order_id, effects.mail_texts)
    history = list(effects.history)
    if effects.tasks:
        opened = await store.open_tasks(
            uow.conn, order_id, [("staff", note, blocking) for note, blocking in effects.tasks], opened_by="rules"
        )
        history += [("task opened", {"task_id": task_id, "kind": kind}) for task_id, kind in opened]
    await store.add_history(uow.conn, order_id, history + effects.skipped_holds, actor="rules", cause_id=cause_id)
    return effects.hold_reason


async def apply_waiting_statuses(uow: UnitOfWork, order_id: UUID, stage: Stage, cause_id: UUID) -> bool:
    """Sets the child statuses that fired rules left waiting for `stage`, now the order is there; drops (with a history
    entry) those of a stage the order went past without stopping. Returns whether a status was set."""
    rows = await store.waiting_statuses(uow.conn, order_id)
    if not rows:
        return False
    due, passed = due_waiting([(r["rule_id"], r["waiting_status"], Stage(r["waiting_stage"])) for r in rows], stage)
    history = [("rule action applied", {"rule": rule_id, "status": status}) for rule_id, status in due]
    history += [
        ("rule action skipped", {"rule": rule_id, "reason": f"the order passed {target.value} without stopping there"})
        for rule_id, _, target in passed
    ]
    if due:
        await store.update_staff_fields(uow.conn, order_id, {"child_status": due[-1][1]})
        await store.stop_waiting(uow.conn, order_id, [rule_id for rule_id, _ in due], applied=True)
    if passed:
        await store.stop_waiting(uow.conn, order_id, [rule_id for rule_id, _, _ in passed], applied=False)
    if history:
        await store.add_history(uow.conn, order_id, history, actor="rules", cause_id=cause_id)
    return bool(due)
