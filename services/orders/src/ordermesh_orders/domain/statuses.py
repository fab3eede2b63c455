"""Two-level statuses (seed 001): one group per built-in stage, renamable and reorderable, each with child statuses."""

from typing import Any

from ordermesh_contracts import Stage

DEFAULT_GROUP_NAMES: dict[Stage, str] = {stage: stage.value.replace("_", " ") for stage in Stage}


def status_config_errors(groups: list[dict[str, Any]]) -> list[str]:
    """Why a status configuration can't be saved: a stage twice, or a child status in two groups."""
    errors = []
    stages = [g["stage"] for g in groups]
    errors += [f"stage {s} has more than one group" for s in sorted({s for s in stages if stages.count(s) > 1})]
    children = [c for g in groups for c in g["children"]]
    errors += [f"child status {c!r} is used twice" for c in sorted({c for c in children if children.count(c) > 1})]
    return errors


def complete(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The groups in the shop's order, followed by a default group for every stage the shop left out."""
    given = {g["stage"] for g in groups}
    return [*groups, *({"stage": s.value, "name": DEFAULT_GROUP_NAMES[s], "children": []} for s in Stage if s.value not in given)]


def child_status_refusal(groups: list[dict[str, Any]], stage: Stage, status: str) -> str | None:
    """Why `status` can't be set on an order at `stage` (None when it can). Without a configuration any status goes."""
    if not groups:
        return None
    owner = next((g for g in groups if status in g["children"]), None)
    if owner is None:
        return f"the shop has no child status {status!r}"
    if owner["stage"] != stage.value:
        return f"{status!r} belongs to the {owner['name']} group ({owner['stage']}), not to {stage.value}"
    return None


PROGRESS_ORDER = (
    Stage.REVIEW, Stage.AWAITING_PAYMENT, Stage.AWAITING_ALLOCATION, Stage.READY_TO_SHIP, Stage.SHIPPING, Stage.SHIPPED,
    Stage.COMPLETED,
)
"""The stages an order passes through in order (on hold and cancelled are not on the way)."""


def stage_to_wait_for(groups: list[dict[str, Any]], stage: Stage, status: str, *, held_from: Stage | None = None) -> Stage | None:
    """The later stage whose group owns `status`, when an order now at `stage` (or held from `held_from`) will still
    reach it: a rule's status action waits for that stage instead of being dropped. None when it can't wait (the
    status is unknown, belongs to the stage now, or to a stage the order has passed)."""
    owner = next((g for g in groups if status in g["children"]), None)
    if owner is None:
        return None
    target = Stage(owner["stage"])
    now = held_from if stage is Stage.ON_HOLD and held_from is not None else stage
    if target not in PROGRESS_ORDER or now not in PROGRESS_ORDER:
        return None
    return target if PROGRESS_ORDER.index(target) > PROGRESS_ORDER.index(now) else None


def due_waiting(waiting: list[tuple[str, str, Stage]], stage: Stage) -> tuple[list[tuple[str, str]], list[tuple[str, str, Stage]]]:
    """Of the waiting (rule, status, stage) actions, those that apply now the order is at `stage`, and those it
    passed without stopping (they can never apply); the others keep waiting."""
    if stage not in PROGRESS_ORDER:
        return [], []
    now = PROGRESS_ORDER.index(stage)
    due = [(rule_id, status) for rule_id, status, target in waiting if target is stage]
    passed = [(rule_id, status, target) for rule_id, status, target in waiting if PROGRESS_ORDER.index(target) < now]
    return due, passed
