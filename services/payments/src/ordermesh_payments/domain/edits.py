"""What an order edit does to its payment: re-authorize, keep a smaller authorization, refund, ask for the balance,
update a request, re-check credit, or nothing. Pure: facts in, a plan out."""

from dataclasses import dataclass, replace
from enum import StrEnum

from .payment import PREPAID_METHODS


class EditAction(StrEnum):
    """What the payments service does about an edited order's money."""

    IGNORE = "ignore"
    RECORD = "record"
    REAUTHORIZE = "reauthorize"
    REFUND = "refund"
    CREDIT_RECHECK = "credit_recheck"
    CREDIT_UPDATE = "credit_update"
    FAIL = "fail"


GATEWAY_ACTIONS = (EditAction.REAUTHORIZE, EditAction.REFUND, EditAction.CREDIT_RECHECK, EditAction.CREDIT_UPDATE)


@dataclass(frozen=True)
class EditFacts:
    """The money facts of one order's payment when an edit arrives.

    `amount` is the amount at stake now (authorized to capture, requested, or credit-checked).
    """

    method: str
    status: str
    amount: int
    authorized: int
    authorization_id: str | None
    captured: int
    refunded: int
    received: int
    cancelled: bool
    edit_no: int
    credit_status: str | None = None


@dataclass(frozen=True)
class EditPlan:
    """The decision: an action, and what PaymentAmountChanged (or the failure) says once it is done.

    `status` is the payment's status afterwards (None: unchanged); `request` the amount a fresh PaymentRequested
    asks for (None: no new request); `replaces` the authorization voided once a new one stands.
    """

    action: EditAction
    previous_amount: int
    amount: int
    outcome: str | None = None
    refunded: int = 0
    balance_due: int = 0
    refund_owed: int = 0
    status: str | None = None
    request: int | None = None
    replaces: str | None = None
    reason: str | None = None


IN_FLIGHT = {"authorizing": "an authorization", "capturing": "a capture"}
UNCAPTURED = ("authorized", "capture_failed")


def plan_edit(payment: EditFacts | None, edit_no: int, new_total: int, *, retry: bool = False) -> EditPlan:
    """What to do so the payment matches an edited order total of `new_total` (edit number `edit_no`).

    - An edit of a cancelled order, or one not newer than the last honoured (`retry` aside), is ignored: no event.
    - Card, uncaptured: up beyond the authorization → re-authorize for the new amount, then void the old one
      (`reauthorized`); down (or within what is authorized) → keep it, capture only the new amount
      (`authorization_reduced`). Captured: down → refund the difference (`refunded`); up → `balance_requested`.
    - Prepaid, nothing received yet → `request_updated` with a fresh request for the new total. Something received:
      still short → `balance_requested` (a fresh request for the balance); covered → `request_updated`, and any
      over-payment is kept as `refund_owed` for staff to pay back by hand (money received outside a gateway is
      never refunded through one, so `refunded` stays 0).
    - Cash on delivery → `request_updated` (the carrier collects the new total); once collected, a lower total (a
      return) is kept as `refund_owed`.
    - Deferred: down → the provider's amount is lowered (`credit_amount_updated`); up, or after a rejection → a
      fresh credit check (`credit_rechecked`).
    - Paid on the sales platform (nothing here can move that money): down → `request_updated` with the difference
      kept as `refund_owed` (staff refund it on the platform); up → `balance_requested` (staff collect it).
    - Points only, or an unchanged total → `nothing_to_change`.
    """
    if payment is None:
        return EditPlan(EditAction.FAIL, 0, new_total, reason="no payment is known for this order")
    previous = payment.amount
    if payment.cancelled:
        return EditPlan(EditAction.IGNORE, previous, new_total, reason="order is cancelled")
    if not retry and edit_no <= payment.edit_no:
        return EditPlan(EditAction.IGNORE, previous, new_total, reason=f"edit {edit_no} was already honoured")
    if payment.status in IN_FLIGHT:
        return EditPlan(
            EditAction.FAIL, previous, new_total,
            reason=f"{IN_FLIGHT[payment.status]} is still in progress at the gateway; retry the amount change later",
        )
    nothing = EditPlan(EditAction.RECORD, previous, new_total, outcome="nothing_to_change")
    if payment.method == "points_only":
        return nothing
    if payment.method == "card":
        return _card(payment, new_total, nothing)
    if payment.method in PREPAID_METHODS:
        return _prepaid(payment, new_total, nothing)
    if payment.method == "cash_on_delivery":
        if payment.received > 0:  # collected on delivery: only a return can lower it now, and staff pay that back
            return _platform(payment, new_total, nothing)
        return nothing if new_total == previous else replace(nothing, outcome="request_updated")
    if payment.method == "deferred":
        return _deferred(payment, new_total, nothing)
    if payment.method == "platform":
        return _platform(payment, new_total, nothing)
    return EditPlan(EditAction.FAIL, previous, new_total, reason=f"payment method {payment.method} cannot follow an edit")


def _card(payment: EditFacts, new_total: int, nothing: EditPlan) -> EditPlan:
    if payment.captured > 0:
        kept = payment.captured - payment.refunded
        if new_total < kept:
            return replace(nothing, action=EditAction.REFUND, outcome="refunded", refunded=kept - new_total)
        if new_total > kept:
            return replace(nothing, outcome="balance_requested", balance_due=new_total - kept)
        return nothing
    if payment.status == "voided":
        return replace(
            nothing, action=EditAction.FAIL, outcome=None,
            reason="the card authorization was voided; take the new amount by hand",
        )
    live = payment.status in UNCAPTURED and payment.authorization_id is not None
    if new_total == payment.amount and (live or new_total == 0):
        return nothing
    if live and new_total <= payment.authorized:
        return replace(nothing, outcome="authorization_reduced")
    if new_total == 0:
        return nothing
    return replace(
        nothing, action=EditAction.REAUTHORIZE, outcome="reauthorized",
        replaces=payment.authorization_id if live else None, status="authorized",
    )


def _prepaid(payment: EditFacts, new_total: int, nothing: EditPlan) -> EditPlan:
    if new_total == payment.amount:
        return nothing
    balance = new_total - payment.received
    if payment.received == 0:
        return replace(
            nothing, outcome="request_updated", request=new_total if new_total > 0 else None,
            status="awaiting_payment" if new_total > 0 else "paid",
        )
    if balance > 0:
        return replace(nothing, outcome="balance_requested", balance_due=balance, request=balance, status="partly_paid")
    return replace(nothing, outcome="request_updated", refund_owed=-balance, status="paid")


def _deferred(payment: EditFacts, new_total: int, nothing: EditPlan) -> EditPlan:
    if payment.status == "captured":
        return replace(
            nothing, action=EditAction.FAIL, outcome=None,
            reason="the shipment was already reported to the provider; change the invoice at the provider by hand",
        )
    if new_total == payment.amount and payment.credit_status != "rejected":
        return nothing
    if new_total == 0:
        return replace(
            nothing, action=EditAction.FAIL, outcome=None,
            reason="a deferred payment cannot be lowered to 0; cancel the payment instead",
        )
    if payment.credit_status is None or payment.credit_status == "rejected" or new_total > payment.amount:
        return replace(nothing, action=EditAction.CREDIT_RECHECK, outcome="credit_rechecked")
    return replace(nothing, action=EditAction.CREDIT_UPDATE, outcome="credit_amount_updated")


def _platform(payment: EditFacts, new_total: int, nothing: EditPlan) -> EditPlan:
    kept = payment.captured - payment.refunded + payment.received
    if new_total < kept:
        return replace(nothing, outcome="request_updated", refund_owed=kept - new_total)
    if new_total > kept:
        return replace(nothing, outcome="balance_requested", balance_due=new_total - kept)
    return nothing


def after_gateway(plan: EditPlan, approved: bool, reason: str | None) -> EditPlan:
    """The plan once the gateway answered: recorded as planned, or a failure (the previous amount still stands)."""
    if approved:
        return replace(plan, action=EditAction.RECORD)
    what = {
        EditAction.REAUTHORIZE: "re-authorization",
        EditAction.REFUND: "refund",
        EditAction.CREDIT_RECHECK: "credit check",
        EditAction.CREDIT_UPDATE: "amount update",
    }.get(plan.action, "change")
    return replace(plan, action=EditAction.FAIL, reason=f"{what} refused by the gateway: {reason or 'no reason given'}")


def capture_amount(amount: int, authorized: int) -> int:
    """What a capture takes: the amount at stake after edits, never more than is authorized."""
    return min(amount, authorized)
