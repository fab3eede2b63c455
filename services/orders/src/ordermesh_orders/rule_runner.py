"""Runs a shop's rules on an order inside the order's unit of work, and records every firing in its history."""

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from ordermesh_contracts import DeliveryGroup, OrderLine, Stage
from ordermesh_servicekit.consuming import UnitOfWork

from . import store
from .domain.rules import (
    AddFreeLine,
    AddLabel,
    AddMailText,
    AddMemo,
    AddTaskAction,
    Firing,
    Hold,
    OrderFacts,
    RuleSet,
    SetCarrier,
    SetChildStatus,
    evaluate,
)
from .domain.statuses import child_status_refusal, due_waiting, stage_to_wait_for


async def planned_firing(
    uow: UnitOfWork, raw: dict[str, Any] | None, facts: Callable[[], Awaitable[OrderFacts]], order_id: UUID | None = None
) -> Firing:
    """What the shop's rules (`raw`, as stored) would do to an order now (nothing is stored); facts are read only if
    the shop has rules."""
    if raw is None:
        return Firing([], [])
    already = await store.fired_rules(uow.conn, order_id) if order_id else set()
    return evaluate(RuleSet.model_validate(raw), await facts(), already)


def mail_texts_of(firing: Firing) -> dict[str, str]:
    """Text the fired rules insert into mails, by mail kind."""
    return {action.mail_kind: action.text for _, action in firing.of_type(AddMailText)}


def with_intake_actions(deliveries: list[DeliveryGroup], firing: Firing) -> list[DeliveryGroup]:
    """Deliveries with the free lines and carrier that rules add at intake (before anyone else sees the order)."""
    free_lines = [
        OrderLine(sku=a.sku, name=a.name, unit_price=0, quantity=a.quantity, tax_rate_percent=10)
        for _, a in firing.of_type(AddFreeLine)
    ]
    carriers = [a.carrier for _, a in firing.of_type(SetCarrier)]
    first, *rest = deliveries
    first = first.model_copy(update={"lines": [*first.lines, *free_lines], **({"carrier": carriers[-1]} if carriers else {})})
    return [first, *[d.model_copy(update={"carrier": carriers[-1]}) if carriers else d for d in rest]]


async def apply_firing(
    uow: UnitOfWork,
    order_id: UUID,
    shop_id: str,
    stage: Stage,
    firing: Firing,
    *,
    at_intake: bool,
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
    history = [("rule fired", {"rule": rule_id}) for rule_id in firing.rule_ids]
    changes: dict = {}
    groups = await store.status_groups(uow.conn, shop_id)
    waiting: list[tuple[str, str, str]] = []
    for rule_id, action in firing.of_type(SetChildStatus):
        refusal = child_status_refusal(groups, stage, action.status)
        if refusal is None:
            changes["child_status"] = action.status
        elif (later := stage_to_wait_for(groups, stage, action.status, held_from=held_from)) is not None:
            waiting.append((rule_id, action.status, later.value))
            history.append(("rule action waiting", {"rule": rule_id, "status": action.status, "until": later.value}))
        else:
            history.append(("rule action skipped", {"rule": rule_id, "reason": refusal}))
    await store.wait_for_stage(uow.conn, order_id, waiting)
    if memos := [a.text for _, a in firing.of_type(AddMemo)]:
        changes["memo"] = "\n".join(memos)
    if labels := [a.label for _, a in firing.of_type(AddLabel)]:
        changes["add_labels"] = labels
    if (carriers := firing.of_type(SetCarrier)) and not at_intake:
        changes["carrier"] = carriers[-1][1].carrier
    if not at_intake:
        history += [
            ("rule action skipped", {"rule": rule_id, "reason": "free lines are added at intake only"})
            for rule_id, _ in firing.of_type(AddFreeLine)
        ]
    if changes:
        await store.update_staff_fields(uow.conn, order_id, changes)
    if mail_texts := {a.mail_kind: a.text for _, a in firing.of_type(AddMailText)}:
        await store.set_mail_texts(uow.conn, order_id, mail_texts)
    tasks = [("staff", a.note, a.blocking) for _, a in firing.of_type(AddTaskAction)]
    if tasks:
        opened = await store.open_tasks(uow.conn, order_id, tasks, opened_by="rules")
        history += [("task opened", {"task_id": task_id, "kind": kind}) for task_id, kind in opened]
    holds = firing.of_type(Hold)
    if holds and not holds_allowed:
        history += [
            ("rule action skipped", {"rule": rule_id, "reason": "staff released the order by hand in this command"})
            for rule_id, _ in holds
        ]
        holds = []
    await store.add_history(uow.conn, order_id, history, actor="rules", cause_id=cause_id)
    return holds[0][1].reason if holds else None


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
