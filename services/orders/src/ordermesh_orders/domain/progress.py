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


PREPAID = (PaymentMethod.BANK_TRANSFER, PaymentMethod.CONVENIENCE_STORE)
SETTLED_BY_CAPTURE = (PaymentMethod.CARD, PaymentMethod.DEFERRED, PaymentMethod.PLATFORM, PaymentMethod.POINTS_ONLY)
"""Methods whose money is settled when payments reports a capture: a card or deferred payment captured at shipping,
a platform payment recorded at acceptance, and nothing to pay (points only) settled once the order has shipped."""


def initial_flags(
    payment_method: PaymentMethod,
    address: str,
    *,
    requested_date: bool = False,
    points_used: int = 0,
    nothing_to_pay: bool = False,
) -> dict[str, str]:
    """Flags of a just-accepted order. A requested delivery date waits for shipping's check; points used wait
    for the points service to reserve them. An order paid on the platform needs no authorization, credit check or
    prepaid payment, but like every method settled by a capture it completes only once payments reports it. An order
    with nothing to pay (a total of 0) secures nothing whatever its method, and is settled by payments once shipped."""
    card = payment_method is PaymentMethod.CARD
    captured_later = payment_method in SETTLED_BY_CAPTURE
    flags = {
        "customer": "normal",
        "address": address,
        "delivery_date": "pending" if requested_date else "ok",
        "card_authorization": "none" if card else "not_applicable",
        "credit_check": "not_yet" if payment_method is PaymentMethod.DEFERRED else "not_applicable",
        "prepaid_payment": "none" if payment_method in PREPAID else "not_applicable",
        "cod_collection": "pending" if payment_method is PaymentMethod.CASH_ON_DELIVERY else "not_applicable",
        "capture": "not_yet" if captured_later else "not_applicable",
        "points_redemption": "pending" if points_used > 0 else "not_applicable",
        "allocation": "none",
        "shipping": "unshipped",
        "points": "none",
        "mail_order_confirmation": "unsent",
        "mail_shipped": "unsent",
    }
    if nothing_to_pay and payment_method is not PaymentMethod.PLATFORM:
        flags.update(card_authorization="not_applicable", credit_check="not_applicable",
                     prepaid_payment="not_applicable", cod_collection="not_applicable", capture="not_yet")
    return flags


def payment_cleared(state: OrderState) -> bool:
    """Whether the order may leave awaiting_payment: card authorized, credit ok (deferred), prepaid received; cash
    on delivery, points only and an order paid on the platform at once (nothing to secure before shipping)."""
    method = state.payment_method
    if method is PaymentMethod.CARD:
        return state.flags.get("card_authorization") in ("authorized", "not_applicable")
    if method is PaymentMethod.DEFERRED:
        return state.flags.get("credit_check") in ("ok", "not_applicable")
    if method in PREPAID:
        return state.flags.get("prepaid_payment") in ("received", "not_applicable")
    return True


def payment_settled(flags: dict[str, str]) -> bool:
    """Whether the money is in: captured (card, deferred, platform, and points only's settlement with nothing to pay),
    received (prepaid), collected (cash on delivery)."""
    return (
        flags.get("capture", "not_applicable") in SETTLED_OR_NOT_APPLICABLE
        and flags.get("prepaid_payment", "not_applicable") in ("received", "not_applicable")
        and flags.get("cod_collection", "not_applicable") in ("collected", "not_applicable")
    )


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
                and flags.get("points_redemption", "not_applicable") in ("reserved", "not_applicable")
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
                payment_settled(flags)
                and flags["points"] in ("confirmed", "reversed", "not_applicable")
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


STAFF_CONFIRMABLE = frozenset({"address", "delivery_date", "customer", "label_check"})


def record_flags(state: OrderState, changes: dict[str, str]) -> Progress:
    """Applies the flag changes that still apply, then advances the stage as far as the flags allow.

    A value staff confirmed stays confirmed: a later check result does not overturn it (seed 002)."""
    changes = {
        flag: value
        for flag, value in applicable_changes(state, changes).items()
        if not (flag in STAFF_CONFIRMABLE and state.flags.get(flag) == "confirmed")
    }
    state = replace(state, flags={**state.flags, **changes})
    return advance(state)


def advance(state: OrderState) -> Progress:
    """Moves the order through every stage its flags allow, one step at a time."""
    transitions: list[tuple[Stage, Stage]] = []
    while (target := next_stage(state)) is not None:
        transitions.append((state.stage, target))
        state = replace(state, stage=target)
    return Progress(state, transitions)
