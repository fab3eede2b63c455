"""Deferred payment (post-pay with a credit check): when an accepted order's credit check is asked for, what a
provider's answer means and when the shipment report captures. Pure."""

from dataclasses import dataclass
from enum import StrEnum


class CreditStatus(StrEnum):
    """A credit check's state at the provider, as payments records it."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


DECIDED = (CreditStatus.APPROVED, CreditStatus.REJECTED)

PAYMENT_STATUS = {
    CreditStatus.PENDING: "credit_pending",
    CreditStatus.APPROVED: "credit_approved",
    CreditStatus.REJECTED: "credit_rejected",
}
"""The payment's status while its current credit check is in each state."""


@dataclass(frozen=True)
class CreditAnswer:
    """A provider's answer about one credit check."""

    status: CreditStatus
    check_id: str | None = None
    reason: str | None = None


def applies(recorded: str | None, answer: CreditAnswer) -> bool:
    """Whether a provider's answer changes anything: only a decision about a check still pending with us.

    A decision arriving twice (a second poll, a redelivered message) finds the check decided and changes nothing.
    """
    return recorded == CreditStatus.PENDING and answer.status in DECIDED


def reports_shipment(method: str, status: str, cancelled: bool, all_shipped: bool) -> bool:
    """Whether a shipment is reported to the deferred-payment provider (which is the capture): once everything
    has shipped, for an approved credit check of an order still on."""
    return method == "deferred" and status == PAYMENT_STATUS[CreditStatus.APPROVED] and not cancelled and all_shipped


def cancellable(status: str) -> bool:
    """Whether the provider transaction of a deferred payment in `status` can be cancelled there."""
    return status in (PAYMENT_STATUS[CreditStatus.PENDING], PAYMENT_STATUS[CreditStatus.APPROVED], "capture_failed")


class CreditCheckStep(StrEnum):
    """What an accepted deferred-payment order's message does."""

    DUPLICATE = "duplicate"
    """Its result is recorded already: nothing more."""
    CANCELLED = "cancelled"
    """Cancelled before its credit check: the payment is recorded as cancelled, nothing asked of the provider."""
    REPEATED = "repeated"
    """The same order was accepted before under another event id, whose credit check stands: nothing."""
    REQUEST = "request"
    """The intent is recorded (kept if it was recorded before), then the provider is asked under this message's key."""


@dataclass(frozen=True)
class CreditCheckFacts:
    """What the credit check of an accepted order decides on, read in one statement with the payment row."""

    processed: bool
    """The inbox holds the message: its result unit of work committed."""
    cancelled: bool
    payment_exists: bool
    check_keys: tuple[str, ...]
    """Idempotency keys of the order's credit checks so far, oldest first."""


def plan_credit_check(facts: CreditCheckFacts, key: str) -> CreditCheckStep:
    """What asking for the credit check of an accepted order under idempotency `key` does: an intent recorded before
    under the same key is asked again with it; a check under another key means the order was accepted again."""
    if facts.processed:
        return CreditCheckStep.DUPLICATE
    if facts.cancelled:
        return CreditCheckStep.CANCELLED
    if facts.check_keys and facts.check_keys != (key,):
        return CreditCheckStep.REPEATED
    return CreditCheckStep.REQUEST
