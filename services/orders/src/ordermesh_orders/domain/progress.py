"""State flags and the stage they allow: the next stage is a pure function of the order's flags (seed 002)."""

from dataclasses import dataclass, field, replace

from ordermesh_contracts import PaymentMethod, Stage

SETTLED_OR_NOT_APPLICABLE = {"done", "not_applicable"}
MAIL_DONE = {"sent", "not_applicable"}


@dataclass(frozen=True)
class OrderState:
    """What progress depends on: stage, mode, payment method, flags and open blocking tasks."""

    stage: Stage
    payment_method: PaymentMethod
    flags: dict[str, str]
    mode: str = "auto"
    blocking_tasks: int = 0
    held_from: Stage | None = None


def initial_flags(payment_method: PaymentMethod, address: str) -> dict[str, str]:
    """Flags of a just-accepted order."""
    card = payment_method is PaymentMethod.CARD
    return {
        "customer": "normal",
        "address": address,
        "delivery_date": "ok",
        "card_authorization": "none" if card else "not_applicable",
        "capture": "not_yet" if card else "not_applicable",
        "allocation": "none",
        "shipping": "unshipped",
        "points": "none",
        "mail_order_confirmation": "unsent",
        "mail_shipped": "unsent",
    }


def payment_cleared(state: OrderState) -> bool:
    """Whether the order may leave awaiting_payment."""
    method = state.payment_method
    if method is PaymentMethod.CARD:
        return state.flags.get("card_authorization") == "authorized"
    if method is PaymentMethod.DEFERRED:
        return state.flags.get("credit_check") == "ok"
    if method in (PaymentMethod.BANK_TRANSFER, PaymentMethod.CONVENIENCE_STORE):
        return state.flags.get("prepaid_payment") == "received"
    return True


def next_stage(state: OrderState) -> Stage | None:
    """The stage the flags allow the order to move to now, or None to stay."""
    if state.mode != "auto":
        return None
    flags = state.flags
    match state.stage:
        case Stage.REVIEW:
            if (
                flags["customer"] in ("normal", "confirmed")
                and flags["address"] in ("ok", "confirmed")
                and flags["delivery_date"] in ("ok", "confirmed")
                and state.blocking_tasks == 0
            ):
                return Stage.AWAITING_PAYMENT
        case Stage.AWAITING_PAYMENT:
            if payment_cleared(state):
                return Stage.AWAITING_ALLOCATION
        case Stage.AWAITING_ALLOCATION:
            if flags["allocation"] == "full":
                return Stage.READY_TO_SHIP
        case Stage.READY_TO_SHIP:
            if flags["shipping"] in ("requested", "partly_shipped", "shipped"):
                return Stage.SHIPPING
        case Stage.SHIPPING:
            if flags["shipping"] == "shipped":
                return Stage.SHIPPED
        case Stage.SHIPPED:
            if (
                flags["capture"] in SETTLED_OR_NOT_APPLICABLE
                and flags["points"] in ("confirmed", "not_applicable")
                and flags["mail_shipped"] in MAIL_DONE
            ):
                return Stage.COMPLETED
    return None


@dataclass(frozen=True)
class Progress:
    """The result of recording flag changes: the new state and every stage it passed through."""

    state: OrderState
    transitions: list[tuple[Stage, Stage]] = field(default_factory=list)


UNSHIPPED_ONLY_FLAGS = frozenset({"address", "delivery_date", "label_check", "allocation"})
"""Checks that matter only while the order is unshipped (seed 002): once shipped, new results are not applied."""
SHIPPED_STAGES = (Stage.SHIPPED, Stage.COMPLETED)


def applicable_changes(state: OrderState, changes: dict[str, str]) -> dict[str, str]:
    """The flag changes that still apply: checks of unshipped deliveries stop once the order has shipped."""
    if state.stage not in SHIPPED_STAGES and state.flags.get("shipping") != "shipped":
        return changes
    return {flag: value for flag, value in changes.items() if flag not in UNSHIPPED_ONLY_FLAGS}


def record_flags(state: OrderState, changes: dict[str, str]) -> Progress:
    """Applies the flag changes that still apply, then advances the stage as far as the flags allow."""
    state = replace(state, flags={**state.flags, **applicable_changes(state, changes)})
    return advance(state)


def advance(state: OrderState) -> Progress:
    """Moves the order through every stage its flags allow, one step at a time."""
    transitions: list[tuple[Stage, Stage]] = []
    while (target := next_stage(state)) is not None:
        transitions.append((state.stage, target))
        state = replace(state, stage=target)
    return Progress(state, transitions)
