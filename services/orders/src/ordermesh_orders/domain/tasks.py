"""Tasks: what staff must look at, opened by flag values and closed by staff (seed 001's automatic tasks)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskKind:
    """A kind of task: its title, whether it keeps the order in review, and the flag closing it confirms."""

    title: str
    blocking: bool
    confirms_flag: str | None = None


TASK_KINDS: dict[str, TaskKind] = {
    "address_may_be_wrong": TaskKind("Address may be wrong: check postal code and address", True, "address"),
    "watch_listed_customer": TaskKind("Watch-listed customer: check before shipping", True, "customer"),
    "delivery_date_error": TaskKind("Requested delivery date is not possible: contact the customer", True, "delivery_date"),
    "delivery_date_requested": TaskKind("Delivery date requested: check", False),
    "remote_island": TaskKind("Remote island: check the shipping fee", False),
    "relay_area": TaskKind("Relay area: check the surcharge", False),
    "payment_failed": TaskKind("Payment failed: contact the customer", False),
    "capture_failed": TaskKind("Capture failed: retry or fix on the gateway", False),
    "amount_change_failed": TaskKind("Amount change failed: fix the amount on the gateway side", False),
    "mail_failed": TaskKind("A customer mail could not be sent", False),
    "points_redemption_failed": TaskKind("Points used exceed the customer's balance", True),
    "label_check_failed": TaskKind("Carrier label check failed: change the carrier or time slot, or confirm with the carrier", True, "label_check"),
    "shipment_request_failed": TaskKind("The warehouse did not take the shipment request", False),
    "payment_balance_due": TaskKind("Customer paid less than the amount due", False),
    "refund_owed": TaskKind("Customer paid more than the amount due: refund", False),
    "payment_overdue": TaskKind("Payment is overdue", False),
    "authorization_expiring": TaskKind("Card authorization expires soon: re-authorize or ship first", False),
    "points_debt": TaskKind("Points deduction exceeded the balance: debt recorded", False),
    "payment_cancellation_failed": TaskKind("Cancelling the payment failed: fix it on the payment side", False),
    "shipping_cancellation_failed": TaskKind("A shipment could not be cancelled: stop it at the warehouse", False),
    "shipping_edit_refused": TaskKind("The warehouse could not follow an edit: reverse it or stop the parcel", False),
    "intake_check": TaskKind("Check what the shop's platform sent", True),
    "staff": TaskKind("Task added by staff or a rule", False),
}
"""Every task kind ordermesh opens on its own; rules and staff add `staff` tasks with their own note."""

_OPENED_BY_FLAG: dict[tuple[str, str], str] = {
    ("address", "error"): "address_may_be_wrong",
    ("customer", "watch_listed"): "watch_listed_customer",
    ("delivery_date", "error"): "delivery_date_error",
    ("card_authorization", "error"): "payment_failed",
    ("credit_check", "error"): "payment_failed",
    ("capture", "error"): "capture_failed",
    ("amount_change", "failed"): "amount_change_failed",
    ("points_redemption", "failed"): "points_redemption_failed",
    ("label_check", "failed"): "label_check_failed",
    ("shipment_request", "failed"): "shipment_request_failed",
    ("prepaid_payment", "under_paid"): "payment_balance_due",
    ("refund", "owed"): "refund_owed",
    ("authorization_expiry", "soon"): "authorization_expiring",
    ("points_debt", "owed"): "points_debt",
    ("cod_collection", "short"): "payment_balance_due",
    ("payment_cancellation", "failed"): "payment_cancellation_failed",
    ("shipping_cancellation", "failed"): "shipping_cancellation_failed",
    ("prepaid_payment", "overdue"): "payment_overdue",
    ("balance", "due"): "payment_balance_due",
    ("shipping_edit", "refused"): "shipping_edit_refused",
}


def tasks_opened_by(changes: dict[str, str]) -> list[str]:
    """The task kinds that flag changes open (a failed mail of any kind opens `mail_failed`)."""
    kinds = [_OPENED_BY_FLAG[(flag, value)] for flag, value in changes.items() if (flag, value) in _OPENED_BY_FLAG]
    if any(flag.startswith("mail_") and value == "failed" for flag, value in changes.items()):
        kinds.append("mail_failed")
    return kinds


def flag_confirmed_by_closing(kind: str) -> str | None:
    """The flag that closing a task of this kind confirms (a staff override), if any."""
    task_kind = TASK_KINDS.get(kind)
    return task_kind.confirms_flag if task_kind else None
