"""What cancelling an order does to its payment: void, refund, withdraw the request, nothing, or a failure for staff."""

from dataclasses import dataclass, replace
from enum import StrEnum

from .credit import cancellable
from .payment import PREPAID_METHODS


class Action(StrEnum):
    """What the payments service does about a cancelled order's money."""

    SILENT = "silent"
    VOID = "void"
    REFUND = "refund"
    CANCEL_CREDIT = "cancel_credit"
    RECORD = "record"
    FAIL = "fail"


@dataclass(frozen=True)
class PaymentFacts:
    """The money facts of one order's payment when it is cancelled."""

    method: str
    status: str
    amount: int
    authorized: int
    captured: int
    refunded: int
    received: int


@dataclass(frozen=True)
class CancelPlan:
    """The decision: an action, and for a recorded outcome what the PaymentCancelled event says.

    `status` is the payment's status once the outcome is recorded (None: it stays as it is).
    """

    action: Action
    outcome: str | None = None
    amount: int = 0
    refund_owed: int = 0
    reason: str | None = None
    status: str | None = None


IN_FLIGHT = {"authorizing": "an authorization", "capturing": "a capture", "credit_checking": "a credit check"}
VOIDABLE = ("authorized", "capture_failed")
NOTHING = CancelPlan(Action.RECORD, outcome="nothing_to_cancel")


def plan_cancellation(payment: PaymentFacts | None, cancel_payment: bool) -> CancelPlan:
    """What to do with the payment of an order cancelled with (or without) `cancel_payment`.

    Without `cancel_payment` nothing about money is done or said (the order is still never charged afterwards).
    A card is voided while uncaptured and refunded once captured; a prepaid request is withdrawn and money
    already received is owed back by hand; a deferred payment's transaction is cancelled at the provider (reported
    as `voided`: the credit reserved for the order is released); money taken on the sales platform is not reversed
    here (`nothing_to_cancel`) but owed back through the platform by staff; a gateway call still in flight cannot be
    reversed safely.
    """
    if not cancel_payment:
        return CancelPlan(Action.SILENT)
    if payment is None:
        return NOTHING
    if payment.status in IN_FLIGHT:
        return CancelPlan(
            Action.FAIL,
            reason=f"{IN_FLIGHT[payment.status]} is still in progress at the gateway; check it and void or refund by hand",
        )
    if payment.method == "platform":
        return replace(NOTHING, refund_owed=payment.captured - payment.refunded + payment.received)
    if payment.method == "card":
        if payment.captured - payment.refunded > 0:
            return CancelPlan(Action.REFUND, outcome="refunded", amount=payment.captured - payment.refunded)
        if payment.status in VOIDABLE:
            return CancelPlan(Action.VOID, outcome="voided", amount=payment.authorized, status="voided")
        return NOTHING
    if payment.method == "deferred" and cancellable(payment.status):
        return CancelPlan(Action.CANCEL_CREDIT, outcome="voided", amount=payment.amount, status="cancelled")
    if payment.method in PREPAID_METHODS:
        return CancelPlan(
            Action.RECORD,
            outcome="request_cancelled",
            amount=max(payment.amount - payment.received, 0),
            refund_owed=payment.received,
            status="cancelled",
        )
    return replace(NOTHING, refund_owed=payment.received)


def after_gateway(plan: CancelPlan, approved: bool, reason: str | None) -> CancelPlan:
    """The plan once the gateway answered its void, refund or cancel: the recorded outcome, or a failure for staff."""
    if approved:
        return replace(plan, action=Action.RECORD)
    what = "cancel at the provider" if plan.action is Action.CANCEL_CREDIT else plan.action.value
    return CancelPlan(Action.FAIL, reason=f"{what} refused by the gateway: {reason or 'no reason given'}")


def amount_due(amount: int, cancelled: bool) -> int:
    """What the customer still owes on the order: nothing once it is cancelled (money received is then owed back)."""
    return 0 if cancelled else amount


def captures_on_shipment(status: str, cancelled: bool) -> bool:
    """Whether a shipment report captures the payment: only an authorized payment of an order not cancelled."""
    return status == "authorized" and not cancelled


def view_balance(
    amount: int, cancelled: bool, *, captured: int, refunded: int, received: int, refunded_for_edits: int = 0
) -> int:
    """The balance staff see: > 0 still due, < 0 to be paid back, 0 settled.

    Of an order still on, refunds are staff decisions rather than money owed, so the order total is compared with
    what came in (less what edits gave back, since the total was lowered with them); of a cancelled order nothing
    is due, so everything kept and not refunded is owed back.
    """
    kept = captured + received - (refunded if cancelled else refunded_for_edits)
    return amount_due(amount, cancelled) - kept
