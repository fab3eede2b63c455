"""Honouring an order edit: which delivery groups changed, what each needs at the warehouse, and how stock follows."""

from collections import Counter
from dataclasses import dataclass, field, replace

from .allocation import coverage_of, plan_top_up

SHIPPED_STATUSES = frozenset({"partly_shipped", "shipped", "delivered"})
"""A shipment in these states has (some of) its goods out: it can no longer be changed or cancelled."""
LIVE_AT_THE_WAREHOUSE = frozenset({"requested"})
"""A shipment in these states has a warehouse request that must be cancelled before its lines can change."""

Lines = dict[tuple[int, str], int]
"""Net units per (delivery group, sku)."""


def net_lines(groups: list[list[tuple[str, int]]]) -> Lines:
    """Net units per (delivery group, sku) of delivery groups given as (sku, quantity) lines.

    A negative line (a cancelled quantity kept on record) nets against the same sku; what nets to zero or
    less is nothing to ship.
    """
    net: Counter[tuple[int, str]] = Counter()
    for index, lines in enumerate(groups):
        for sku, quantity in lines:
            net[(index, sku)] += quantity
    return {key: units for key, units in net.items() if units > 0}


def group_lines(lines: Lines, index: int) -> dict[str, int]:
    """The sku → units of one delivery group."""
    return {sku: units for (group, sku), units in lines.items() if group == index}


def changed_groups(current: Lines, edited: Lines) -> list[int]:
    """Delivery groups whose net lines differ after the edit, in order."""
    groups = {index for index, _ in current} | {index for index, _ in edited}
    return sorted(index for index in groups if group_lines(current, index) != group_lines(edited, index))


@dataclass(frozen=True)
class GroupPlan:
    """What the edit needs for its changed delivery groups, from their shipments' states.

    `refused` maps a group to why it can't follow (it shipped); `to_cancel` are groups whose live warehouse
    request is cancelled first, then requested again with the new lines (`to_reissue`) or, when the group is
    now empty, left cancelled (`to_withdraw`). Other changed groups only have their lines recorded.
    """

    refused: dict[int, str] = field(default_factory=dict)
    to_cancel: list[int] = field(default_factory=list)
    to_reissue: list[int] = field(default_factory=list)
    to_withdraw: list[int] = field(default_factory=list)


def plan_groups(changed: list[int], statuses: dict[int, str], edited: Lines) -> GroupPlan:
    """Decides each changed group from its shipment's status (absent: not requested yet)."""
    plan = GroupPlan()
    for index in changed:
        status = statuses.get(index)
        if status in SHIPPED_STATUSES:
            plan.refused[index] = f"delivery {index} already {status.replace('_', ' ')}"
        elif status in LIVE_AT_THE_WAREHOUSE:
            plan.to_cancel.append(index)
            (plan.to_reissue if group_lines(edited, index) else plan.to_withdraw).append(index)
    return plan


def held_back(
    plan: GroupPlan, holds: dict[int, list], statuses: dict[int, str], edited: Lines
) -> tuple[GroupPlan, list[int], list[int]]:
    """The plan with failed checks applied: a live group that now fails one is cancelled at the warehouse and held
    instead of requested again; a held group the edit made pass is requested. Returns (plan, to hold, released)."""
    to_hold = [index for index in plan.to_reissue if holds.get(index)]
    released = [
        index for index, status in sorted(statuses.items())
        if status == "held" and index in holds and not holds[index] and group_lines(edited, index)
    ]
    reissue = [index for index in plan.to_reissue if index not in to_hold] + released
    return replace(plan, to_reissue=reissue), to_hold, released


def after_warehouse(plan: GroupPlan, cancel_failures: dict[int, str | None], statuses: dict[int, str]) -> GroupPlan:
    """The plan once the warehouse answered each cancel (None: cancelled) and with the shipments' locked states.

    A group whose cancel the warehouse refused (picked or shipped), or that shipped meanwhile, is refused.
    """
    refused = dict(plan.refused)
    for index in plan.to_cancel:
        status = statuses.get(index)
        if status in SHIPPED_STATUSES:
            refused[index] = f"delivery {index} already {status.replace('_', ' ')}"
        elif (failure := cancel_failures.get(index, "the warehouse was not asked to cancel")) is not None:
            refused[index] = f"delivery {index}: {failure}"
    return GroupPlan(
        refused=refused,
        to_cancel=[i for i in plan.to_cancel if i not in refused],
        to_reissue=[i for i in plan.to_reissue if i not in refused],
        to_withdraw=[i for i in plan.to_withdraw if i not in refused],
    )


def effective_lines(current: Lines, edited: Lines, refused: set[int]) -> Lines:
    """The order's lines after the edit: the edited ones, except refused groups keep what they had."""
    kept = {key: units for key, units in current.items() if key[0] in refused}
    taken = {key: units for key, units in edited.items() if key[0] not in refused}
    return {**taken, **kept}


def demand_of(lines: Lines) -> dict[str, int]:
    """Units per sku over every delivery group."""
    demand: Counter[str] = Counter()
    for (_, sku), units in lines.items():
        demand[sku] += units
    return dict(demand)


@dataclass(frozen=True)
class StockPlan:
    """Units to give back and to set aside, and the order's coverage afterwards."""

    release: dict[str, int]
    allocate: dict[str, int]
    coverage: str


def plan_stock(
    demand: dict[str, int], allocated: dict[str, int], available: dict[str, int], *, adjust: bool
) -> StockPlan:
    """How stock follows the edited demand: release what is set aside beyond it, then top up from what is free.

    `allocated` counts the order's units set aside, shipped ones included (the demand includes them too).
    Without `adjust` (staff's choice) nothing moves, and the coverage says how far the old allocation reaches.
    """
    if not adjust:
        return StockPlan({}, {}, coverage_of(demand, allocated))
    release = {sku: units - demand.get(sku, 0) for sku, units in allocated.items() if units > demand.get(sku, 0)}
    kept = {sku: units - release.get(sku, 0) for sku, units in allocated.items()}
    top_up = plan_top_up(demand, kept, available)
    return StockPlan(release, top_up.quantities, top_up.coverage)
