"""What a payment needs, decided from the order alone: which flow it takes and what goes to a gateway."""

from collections.abc import Mapping
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from ordermesh_contracts import OrderAccepted, PaymentMethod


class Flow(StrEnum):
    """How an order's payment is settled."""

    CARD = "card"
    PREPAID = "prepaid"
    CASH_ON_DELIVERY = "cash_on_delivery"
    DEFERRED = "deferred"
    PLATFORM = "platform"
    NONE = "none"


PREPAID_METHODS = (PaymentMethod.BANK_TRANSFER, PaymentMethod.CONVENIENCE_STORE)


def flow_for(order: OrderAccepted) -> Flow:
    """The flow of the order's payment; nothing to pay (points only, or a total of 0) needs no flow at all.

    `charges.total` is already net of points used, so the part paid by points never reaches a gateway.
    """
    method = order.payment.method
    if method is PaymentMethod.POINTS_ONLY or order.charges.total <= 0:
        return Flow.NONE
    if method is PaymentMethod.CARD:
        return Flow.CARD
    if method in PREPAID_METHODS:
        return Flow.PREPAID
    if method is PaymentMethod.CASH_ON_DELIVERY:
        return Flow.CASH_ON_DELIVERY
    if method is PaymentMethod.PLATFORM:
        return Flow.PLATFORM
    return Flow.DEFERRED


def amount_to_authorize(order: OrderAccepted) -> int | None:
    """The card amount to authorize, or None when no gateway is involved (other methods, or nothing to pay)."""
    return order.charges.total if flow_for(order) is Flow.CARD else None


def idempotency_key(cause_event_id: UUID, operation: str) -> str:
    """A gateway idempotency key derived from the event that caused the call, stable across redeliveries."""
    return str(uuid5(NAMESPACE_URL, f"ordermesh-payments:{operation}:{cause_event_id}"))


def platform_reference(channel: str, external_order_no: str) -> str:
    """The capture reference of an order paid on its sales platform: where the money is, for a refund made there."""
    return f"platform:{channel}:{external_order_no}"


NOTHING_TO_PAY = "nothing-to-pay"
"""The capture reference of an order settled with nothing to pay (points only, or a total of 0)."""


def settles_with_nothing_to_pay(status: str, amount: int, cancelled: bool) -> bool:
    """Whether a fully shipped order is settled with nothing paid: no flow was ever needed (points only, or a total
    of 0 that no edit raised) and it is not cancelled. Settled once: afterwards its status is no longer
    `not_applicable`."""
    return status == "not_applicable" and amount <= 0 and not cancelled


def instructions_of(settings: dict) -> dict:
    """What a payment request tells the customer from the shop's settings: where to pay, and whether an unpaid
    order is cancelled automatically."""
    return {"pay_to": settings["bank_account"], "cancels_when_overdue": settings["cancel_overdue_prepaid"]}


def order_correlation(payment: Mapping) -> dict[str, UUID]:
    """Envelope fields that put what a job publishes about a payment under its order's correlation id (kept with the
    payment row; none for a row from before it was kept)."""
    return {"correlation_id": payment["correlation_id"]} if payment.get("correlation_id") else {}
