"""Which payment event an order's payment is, told apart by the order's payment method (seed 004: each shop chooses
the payment events that confirm points, one by one)."""

from dataclasses import dataclass
from typing import Literal, get_args

PaymentEvent = Literal["card_captured", "deferred_captured", "prepaid_received", "cash_collected", "platform_paid"]
PAYMENT_EVENTS: tuple[PaymentEvent, ...] = get_args(PaymentEvent)

NothingDue = Literal["nothing_due"]
NOTHING_DUE: NothingDue = "nothing_due"
"""The (zero) capture of an order paid wholly with points: it has no other payment event, so whatever a shop
chose confirms it, unless the shop confirms by hand only."""

BY_METHOD: dict[str, PaymentEvent | NothingDue] = {
    "card": "card_captured",
    "deferred": "deferred_captured",
    "bank_transfer": "prepaid_received",
    "convenience_store": "prepaid_received",
    "cash_on_delivery": "cash_collected",
    "platform": "platform_paid",
    "points_only": NOTHING_DUE,
}
"""The payment event that settles an order of each payment method."""


@dataclass(frozen=True)
class Payment:
    """A payment event as it arrived: a capture (which names no method) or money received (which names how it was
    paid). A capture of 0 settles an order with nothing to pay (paid with points, or a total of 0)."""

    kind: Literal["captured", "received"]
    method: str | None = None
    nothing_due: bool = False

    def token(self) -> str:
        """The payment as kept with an order waiting for its acceptance, e.g. `captured` or `received:cash_on_delivery`."""
        named = NOTHING_DUE if self.nothing_due else self.method
        return self.kind if named is None else f"{self.kind}:{named}"

    @classmethod
    def of_token(cls, token: str) -> "Payment":
        """The payment a `token()` was made of."""
        kind, _, named = token.partition(":")
        if kind not in ("captured", "received"):
            raise ValueError(f"not a kept payment: {token!r}")
        if named == NOTHING_DUE:
            return cls(kind, nothing_due=True)  # type: ignore[arg-type]
        return cls(kind, named or None)  # type: ignore[arg-type]

    def event(self, order_method: str | None) -> PaymentEvent | NothingDue | None:
        """Which payment event this is for an order paid by `order_method`; None while it can't be told (a capture
        before the order's acceptance named its method).

        A capture is told apart by the order's method (card, deferred, platform); money received by its own method
        (prepaid transfer or cash collected on delivery), or by the order's when it names one unknown here.
        """
        if self.nothing_due or order_method == "points_only":
            return NOTHING_DUE
        for method in (self.method, order_method):
            if method in BY_METHOD:
                return BY_METHOD[method]
        return None


def chosen_events(events: list[PaymentEvent] | tuple[PaymentEvent, ...] | None) -> tuple[PaymentEvent, ...] | None:
    """A shop's list of confirming events, each once and in one order (None stays None: the shop's `confirm_on` holds)."""
    if events is None:
        return None
    return tuple(event for event in PAYMENT_EVENTS if event in events)
