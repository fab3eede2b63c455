"""What a payment needs from the gateway, decided from the order alone."""

from uuid import NAMESPACE_URL, UUID, uuid5

from ordermesh_contracts import OrderAccepted, PaymentMethod


def amount_to_authorize(order: OrderAccepted) -> int | None:
    """The card amount to authorize, or None when no gateway is involved (other methods, or nothing to pay)."""
    if order.payment.method is not PaymentMethod.CARD or order.charges.total <= 0:
        return None
    return order.charges.total


def idempotency_key(cause_event_id: UUID, operation: str) -> str:
    """A gateway idempotency key derived from the event that caused the call, stable across redeliveries."""
    return str(uuid5(NAMESPACE_URL, f"ordermesh-payments:{operation}:{cause_event_id}"))
