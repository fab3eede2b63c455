"""Card rules after authorization: what may be captured, voided or refunded, and when an authorization expires."""

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class CardState:
    """The money facts of one card payment."""

    status: str
    authorized: int
    captured: int
    refunded: int
    cancelled: bool = False


CAPTURABLE = ("authorized", "capture_failed")


def capture_refusals(state: CardState, amount: int) -> list[str]:
    """Why capturing `amount` is not allowed (empty: allowed)."""
    reasons = []
    if state.cancelled:
        reasons.append("order is cancelled; a cancelled order is never captured")
    if state.status not in CAPTURABLE:
        reasons.append(f"payment is {state.status}, not authorized")
    if amount <= 0:
        reasons.append("capture amount must be positive")
    if amount > state.authorized:
        reasons.append(f"capture of {amount} is more than the {state.authorized} authorized")
    return reasons


def void_refusals(state: CardState) -> list[str]:
    """Why voiding is not allowed (empty: allowed)."""
    if state.status in CAPTURABLE:
        return []
    if state.status == "voided":
        return ["payment is already voided"]
    return [f"payment is {state.status}; only an uncaptured authorization can be voided (refund instead)"]


def refund_amount(state: CardState, requested: int | None) -> int:
    """What a refund of `requested` (None: everything left) refunds."""
    return state.captured - state.refunded if requested is None else requested


def refund_refusals(state: CardState, amount: int) -> list[str]:
    """Why refunding `amount` is not allowed (empty: allowed)."""
    refundable = state.captured - state.refunded
    if state.captured == 0:
        return ["nothing was captured; void the authorization instead"]
    if amount <= 0:
        return ["nothing left to refund"]
    if amount > refundable:
        return [f"refund of {amount} is more than the {refundable} captured and not yet refunded"]
    return []


def authorization_expires_at(authorized_at: datetime, valid_days: int) -> datetime:
    """When the gateway drops an authorization made at `authorized_at`."""
    return authorized_at + timedelta(days=valid_days)


def needs_reauthorization(
    authorized_at: datetime, now: datetime, *, valid_days: int, margin: timedelta = timedelta(days=1)
) -> bool:
    """Whether an uncaptured authorization expires within `margin` from `now` (so it must be renewed or flagged)."""
    return now + margin >= authorization_expires_at(authorized_at, valid_days)


RENEWAL_MARGIN = timedelta(days=1)


def renewal_helps(valid_days: int, margin: timedelta = RENEWAL_MARGIN) -> bool:
    """Whether a fresh authorization would outlive the renewal margin (else renewing would only repeat itself)."""
    return timedelta(days=valid_days) > margin


def renewal_outcome(
    *, approved: bool, status: str, authorization_id: str | None, renewed: str, cancelled: bool
) -> str:
    """What a renewed authorization's answer leads to, given the payment as it stands when the answer is recorded.

    `flag` (the gateway refused: staff must act before the old one expires), `replace` (the new authorization
    takes over and the old one is voided), or `void_renewal` (meanwhile the payment was captured, cancelled or
    re-authorized for an edit: the new authorization is not needed and is voided).
    """
    if not approved:
        return "flag"
    if status == "authorized" and authorization_id == renewed and not cancelled:
        return "replace"
    return "void_renewal"
