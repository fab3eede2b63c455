"""Accepting a shop's order: everything intake does to the new order, decided from the order and what the shop keeps
(its watch list, rules and status groups) before anything is stored."""

from dataclasses import dataclass, field
from typing import Any

from ordermesh_contracts import DeliveryGroup, OrderAccepted, OrderLine, ShopOrderSubmitted, Stage, order_id_for

from .intake import merchandise_total
from .progress import OrderState, Progress, advance, initial_flags
from .rules import AddFreeLine, Firing, RuleSet, SetCarrier, effects_of, evaluate, facts_of
from .staff import hold_after
from .statuses import due_waiting
from .tasks import TASK_KINDS, tasks_opened_by


@dataclass(frozen=True)
class NewTask:
    """A task the new order opens."""

    kind: str
    note: str
    blocking: bool
    opened_by: str


@dataclass(frozen=True)
class Entry:
    """A history entry of the new order; `task` is the index (in `Acceptance.tasks`) of the task whose id it records."""

    actor: str
    what: str
    details: dict[str, Any]
    task: int | None = None


@dataclass(frozen=True)
class RuleFiring:
    """A rule that fired at intake, with its child status if that waits for a later stage."""

    rule_id: str
    waiting_status: str | None = None
    waiting_stage: Stage | None = None
    applied: bool = False


@dataclass(frozen=True)
class Acceptance:
    """The accepted order and everything stored with it."""

    accepted: OrderAccepted
    progress: Progress
    """The order's state once saved, and each stage it passed on the way (from review)."""
    tasks: list[NewTask]
    firings: list[RuleFiring]
    history: list[Entry]
    child_status: str | None = None
    memo: str = ""
    labels: list[str] = field(default_factory=list)
    mail_texts: dict[str, str] = field(default_factory=dict)


def accept(
    submitted: ShopOrderSubmitted,
    *,
    address: str,
    watch_listed: bool,
    rule_set: dict[str, Any] | None,
    status_groups: list[dict[str, Any]],
) -> Acceptance:
    """Accepts a valid shop order: its flags (`address` is the address check's result), the tasks they and the order's
    facts open, the shop's rules fired on it (free lines and carrier go into the accepted order; a hold holds it where
    it stops), and the stages it moves through at once."""
    flags = initial_flags(
        submitted.payment.method,
        address,
        requested_date=any(delivery.requested_date for delivery in submitted.deliveries),
        points_used=submitted.charges.points_used,
        nothing_to_pay=submitted.charges.total <= 0,
    )
    if watch_listed:
        flags["customer"] = "watch_listed"
    facts = facts_of(submitted, customer_flag=flags["customer"], child_status=None)
    kinds = tasks_opened_by(flags)
    kinds += [kind for kind, applies in (
        ("delivery_date_requested", facts.requested_date),
        ("remote_island", facts.remote_island),
        ("relay_area", facts.relay_area),
    ) if applies]
    tasks = [NewTask(kind, TASK_KINDS[kind].title, TASK_KINDS[kind].blocking, "intake") for kind in dict.fromkeys(kinds)]
    if submitted.checks_for_staff:
        note = f"{TASK_KINDS['intake_check'].title}: " + "; ".join(submitted.checks_for_staff)
        tasks.append(NewTask("intake_check", note, TASK_KINDS["intake_check"].blocking, "intake"))
    history = [Entry("intake", "accepted", {})]
    history += [Entry("intake", "task opened", {"kind": task.kind}, n) for n, task in enumerate(tasks)]

    firing = evaluate(RuleSet.model_validate(rule_set), facts, set()) if rule_set is not None else Firing([], [])
    effects = effects_of(firing, status_groups, Stage.REVIEW, at_intake=True)
    history += [Entry("rules", what, details) for what, details in effects.history]
    for note, blocking in effects.tasks:
        tasks.append(NewTask("staff", note, blocking, "rules"))
        history.append(Entry("rules", "task opened", {"kind": "staff"}, len(tasks) - 1))
    child_status = effects.staff_fields.get("child_status")

    state = OrderState(
        stage=Stage.REVIEW,
        payment_method=submitted.payment.method,
        flags=flags,
        blocking_tasks=sum(task.blocking for task in tasks),
    )
    progress = advance(state)
    due, passed = due_waiting(effects.waiting, progress.state.stage)
    history += [Entry("rules", "rule action applied", {"rule": rule_id, "status": status}) for rule_id, status in due]
    history += [
        Entry("rules", "rule action skipped", {"rule": rule_id, "reason": f"the order passed {target.value} without stopping there"})
        for rule_id, _, target in passed
    ]
    if due:
        child_status = due[-1][1]
    if effects.hold_reason:
        progress = hold_after(progress)
    history += [
        Entry("auto", "progressed", {"from_stage": f.value, "to_stage": t.value}) for f, t in progress.transitions
    ]
    applied = {rule_id for rule_id, _ in due}
    settled = applied | {rule_id for rule_id, _, _ in passed}
    waiting = {rule_id: (status, stage) for rule_id, status, stage in effects.waiting if rule_id not in settled}
    firings = [
        RuleFiring(rule_id, *waiting.get(rule_id, (None, None)), applied=rule_id in applied)
        for rule_id in firing.rule_ids
    ]
    accepted = OrderAccepted(
        order_id=order_id_for(submitted.shop_id, submitted.channel.value, submitted.external_order_no),
        shop_id=submitted.shop_id,
        channel=submitted.channel,
        external_order_no=submitted.external_order_no,
        currency=submitted.currency,
        customer=submitted.customer,
        deliveries=with_intake_actions(submitted.deliveries, firing),
        charges=submitted.charges,
        merchandise_total=merchandise_total(submitted),
        payment=submitted.payment,
        mail_texts=effects.mail_texts,
        remarks=submitted.remarks,
        **submitted.caused(),
    )
    return Acceptance(
        accepted=accepted,
        progress=progress,
        tasks=tasks,
        firings=firings,
        history=history,
        child_status=child_status,
        memo=effects.staff_fields.get("memo", ""),
        labels=sorted(set(effects.staff_fields.get("add_labels", []))),
        mail_texts=effects.mail_texts,
    )


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
