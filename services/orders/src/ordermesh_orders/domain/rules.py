"""Automatic processing rules (seed 001): per shop, in named groups, ordered, switchable; conditions → actions.

Rules are validated data. They run at intake and after every change of the order; each rule fires at
most once per order, and every firing is written to the order's history.
"""

from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from ordermesh_contracts import Stage
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .areas import is_remote_island, relay_area
from .statuses import child_status_refusal, stage_to_wait_for

CONDITION_FIELDS: dict[str, set[str]] = {
    "payment_method": {"eq", "ne", "in"},
    "channel": {"eq", "ne", "in"},
    "remarks": {"present", "absent", "contains"},
    "total": {"gte", "lte", "eq"},
    "prefecture": {"eq", "ne", "in"},
    "remote_island": {"eq"},
    "relay_area": {"eq"},
    "sku": {"contains", "in"},
    "customer": {"eq", "ne"},
    "requested_date": {"present", "absent"},
    "child_status": {"eq", "ne", "absent"},
    "label": {"contains", "in"},
}
"""Each condition field and the operators it takes."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    """One test on the order; all conditions of a rule must hold."""

    field: Literal[
        "payment_method", "channel", "remarks", "total", "prefecture", "remote_island", "relay_area", "sku", "customer",
        "requested_date", "child_status", "label",
    ]
    op: Literal["eq", "ne", "in", "contains", "present", "absent", "gte", "lte"]
    value: Any = None

    @model_validator(mode="after")
    def _operator_fits_field(self) -> "Condition":
        if self.op not in CONDITION_FIELDS[self.field]:
            raise ValueError(f"operator {self.op!r} does not apply to {self.field!r} (use {sorted(CONDITION_FIELDS[self.field])})")
        if self.op in ("present", "absent"):
            return self
        if self.value is None:
            raise ValueError(f"{self.field} {self.op} needs a value")
        if self.op == "in" and not isinstance(self.value, list):
            raise ValueError(f"{self.field} in needs a list")
        if self.field == "total" and not isinstance(self.value, int):
            raise ValueError("total is compared with an integer amount in minor units")
        return self


class SetChildStatus(_Strict):
    type: Literal["set_child_status"]
    status: str = Field(min_length=1)


class Hold(_Strict):
    """Holds the order where it stops; not when staff released it by hand in the very command the rule fired on."""

    type: Literal["hold"]
    reason: str = "held by a rule"


class AddTaskAction(_Strict):
    type: Literal["add_task"]
    note: str = Field(min_length=1)
    blocking: bool = False


class AddMemo(_Strict):
    type: Literal["add_memo"]
    text: str = Field(min_length=1)


class AddLabel(_Strict):
    type: Literal["add_label"]
    label: str = Field(min_length=1)


class AddFreeLine(_Strict):
    type: Literal["add_free_line"]
    sku: str = Field(min_length=1)
    name: str = Field(min_length=1)
    quantity: int = Field(default=1, gt=0)


class SetCarrier(_Strict):
    type: Literal["set_carrier"]
    carrier: str = Field(min_length=1)


class AddMailText(_Strict):
    type: Literal["add_mail_text"]
    mail_kind: str = Field(min_length=1)
    text: str = Field(min_length=1)


Action = Annotated[
    SetChildStatus | Hold | AddTaskAction | AddMemo | AddLabel | AddFreeLine | SetCarrier | AddMailText,
    Field(discriminator="type"),
]


class Rule(_Strict):
    """Conditions (all must hold) and the actions they trigger."""

    name: str = Field(min_length=1, max_length=100)
    enabled: bool = True
    conditions: list[Condition] = Field(default_factory=list)
    actions: list[Action] = Field(min_length=1)


class RuleGroup(_Strict):
    """A named, switchable, ordered group of rules (e.g. 'sale-day rules')."""

    name: str = Field(min_length=1, max_length=100)
    enabled: bool = True
    rules: list[Rule] = Field(default_factory=list)


class RuleSet(_Strict):
    """A shop's rules, in evaluation order."""

    groups: list[RuleGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_unique_and_no_status_loop(self) -> "RuleSet":
        names = [f"{g.name}/{r.name}" for g in self.groups for r in g.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique within a group: {duplicates}")
        if loop := status_loop(self):
            raise ValueError("set-status rules loop: " + " → ".join(loop))
        return self

    def active_rules(self) -> list[tuple[str, Rule]]:
        """Enabled rules of enabled groups, in order, with their 'group/rule' id."""
        return [(f"{g.name}/{r.name}", r) for g in self.groups if g.enabled for r in g.rules if r.enabled]


def status_loop(rule_set: RuleSet) -> list[str] | None:
    """A cycle of child statuses where each one's rule sets the next, if any (it would never settle)."""
    edges: dict[str, set[str]] = {}
    for group in rule_set.groups:
        for rule in group.rules:
            sources = [c.value for c in rule.conditions if c.field == "child_status" and c.op == "eq"]
            targets = [a.status for a in rule.actions if isinstance(a, SetChildStatus)]
            for source in sources:
                edges.setdefault(source, set()).update(targets)

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        for following in sorted(edges.get(node, ())):
            if found := visit(following, [*path, node]):
                return found
        return None

    for start in sorted(edges):
        if found := visit(start, []):
            return found
    return None


@dataclass(frozen=True)
class OrderFacts:
    """What conditions look at."""

    payment_method: str
    channel: str
    remarks: str | None
    total: int
    prefectures: tuple[str, ...]
    remote_island: bool
    skus: tuple[str, ...]
    customer: str
    requested_date: bool
    child_status: str | None
    relay_area: bool = False
    labels: tuple[str, ...] = ()


def holds(condition: Condition, facts: OrderFacts) -> bool:
    """Whether one condition holds for the order."""
    op, value = condition.op, condition.value
    match condition.field:
        case "remarks":
            text = (facts.remarks or "").strip()
            return bool(text) if op == "present" else (not text) if op == "absent" else str(value) in text
        case "requested_date":
            return facts.requested_date if op == "present" else not facts.requested_date
        case "total":
            return {"gte": facts.total >= value, "lte": facts.total <= value, "eq": facts.total == value}[op]
        case "sku":
            wanted = value if isinstance(value, list) else [value]
            return any(sku in facts.skus for sku in wanted)
        case "label":
            wanted = value if isinstance(value, list) else [value]
            return any(label in facts.labels for label in wanted)
        case "prefecture":
            values = set(facts.prefectures)
            wanted = set(value if isinstance(value, list) else [value])
            return bool(values & wanted) if op in ("eq", "in") else not (values & wanted)
        case "child_status" if op == "absent":
            return facts.child_status is None
    actual = getattr(facts, condition.field)
    if isinstance(actual, bool):
        return actual == bool(value)
    if op == "in":
        return actual in value
    return (actual == value) if op == "eq" else (actual != value)


def firing_rules(rule_set: RuleSet, facts: OrderFacts, already_fired: set[str]) -> list[tuple[str, Rule]]:
    """The active rules whose conditions all hold and that have not fired for this order yet, in order."""
    return [
        (rule_id, rule)
        for rule_id, rule in rule_set.active_rules()
        if rule_id not in already_fired and all(holds(c, facts) for c in rule.conditions)
    ]


@dataclass(frozen=True)
class Firing:
    """The rules that fired, in order, and everything their actions ask for."""

    rule_ids: list[str]
    actions: list[tuple[str, Any]]

    def of_type(self, kind: type) -> list[tuple[str, Any]]:
        """The (rule id, action) pairs of one action type."""
        return [(rule_id, action) for rule_id, action in self.actions if isinstance(action, kind)]


def evaluate(rule_set: RuleSet, facts: OrderFacts, already_fired: set[str]) -> Firing:
    """Fires every rule whose conditions hold, once each; a status or label a rule sets can make later rules fire."""
    fired: list[str] = []
    actions: list[tuple[str, Any]] = []
    seen = set(already_fired)
    while True:
        batch = firing_rules(rule_set, facts, seen)
        if not batch:
            return Firing(fired, actions)
        for rule_id, rule in batch:
            seen.add(rule_id)
            fired.append(rule_id)
            for action in rule.actions:
                actions.append((rule_id, action))
                if isinstance(action, SetChildStatus):
                    facts = replace(facts, child_status=action.status)
                elif isinstance(action, AddLabel) and action.label not in facts.labels:
                    facts = replace(facts, labels=(*facts.labels, action.label))


def facts_of(order: Any, *, customer_flag: str, child_status: str | None, labels: tuple[str, ...] = ()) -> OrderFacts:
    """Facts of a ShopOrderSubmitted or OrderAccepted (both carry the fields rules look at), with the order's
    customer flag, child status and labels."""
    addresses = [delivery.address for delivery in order.deliveries]
    return OrderFacts(
        payment_method=order.payment.method.value,
        channel=order.channel.value,
        remarks=getattr(order, "remarks", None),
        total=order.charges.total,
        prefectures=tuple(address.prefecture for address in addresses),
        remote_island=any(a.country == "JP" and is_remote_island(a.postal_code) for a in addresses),
        relay_area=any(a.country == "JP" and relay_area(a.postal_code) is not None for a in addresses),
        skus=tuple(line.sku for delivery in order.deliveries for line in delivery.lines),
        customer=customer_flag,
        requested_date=any(delivery.requested_date for delivery in order.deliveries),
        child_status=child_status,
        labels=tuple(labels),
    )


@dataclass(frozen=True)
class FiringEffects:
    """What fired rules ask of an order, decided but not yet stored."""

    history: list[tuple[str, dict[str, Any]]]
    """Each rule that fired, and each status action that waits or is skipped (the tasks' entries follow them)."""
    staff_fields: dict[str, Any]
    """Changes of staff fields: child_status, memo, add_labels, carrier."""
    waiting: list[tuple[str, str, Stage]]
    """(rule, child status, stage) actions waiting for a later stage."""
    mail_texts: dict[str, str]
    tasks: list[tuple[str, bool]]
    """(note, blocking) of each staff task a rule opens."""
    hold_reason: str | None
    skipped_holds: list[tuple[str, dict[str, Any]]]
    """History entries of holds dropped because staff released the order in the same command."""


def effects_of(
    firing: Firing,
    groups: list[dict[str, Any]],
    stage: Stage,
    *,
    at_intake: bool,
    holds_allowed: bool = True,
    held_from: Stage | None = None,
) -> FiringEffects:
    """What a firing does to an order at `stage` given the shop's status groups. A child status of a later stage's
    group waits for that stage; free lines and carriers of an intake firing are already in the accepted order."""
    history: list[tuple[str, dict[str, Any]]] = [("rule fired", {"rule": rule_id}) for rule_id in firing.rule_ids]
    changes: dict[str, Any] = {}
    waiting: list[tuple[str, str, Stage]] = []
    for rule_id, action in firing.of_type(SetChildStatus):
        refusal = child_status_refusal(groups, stage, action.status)
        if refusal is None:
            changes["child_status"] = action.status
        elif (later := stage_to_wait_for(groups, stage, action.status, held_from=held_from)) is not None:
            waiting.append((rule_id, action.status, later))
            history.append(("rule action waiting", {"rule": rule_id, "status": action.status, "until": later.value}))
        else:
            history.append(("rule action skipped", {"rule": rule_id, "reason": refusal}))
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
    holds = firing.of_type(Hold)
    skipped_holds = []
    if holds and not holds_allowed:
        skipped_holds = [
            ("rule action skipped", {"rule": rule_id, "reason": "staff released the order by hand in this command"})
            for rule_id, _ in holds
        ]
        holds = []
    return FiringEffects(
        history=history,
        staff_fields=changes,
        waiting=waiting,
        mail_texts={a.mail_kind: a.text for _, a in firing.of_type(AddMailText)},
        tasks=[(a.note, a.blocking) for _, a in firing.of_type(AddTaskAction)],
        hold_reason=holds[0][1].reason if holds else None,
        skipped_holds=skipped_holds,
    )
