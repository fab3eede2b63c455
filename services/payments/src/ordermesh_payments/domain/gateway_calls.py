"""Whether a message calls a gateway: a card order's authorization when it is accepted, and the capture once it has
shipped in full, decided from what was loaded with the payment. Pure."""

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from .cancellation import captures_on_shipment
from .credit import reports_shipment
from .edits import capture_amount


class Authorization(StrEnum):
    """What an accepted card order's message does."""

    DUPLICATE = "duplicate"
    """Its result is recorded already: nothing more."""
    GATEWAY_MISSING = "gateway_missing"
    """The gateway it would go to is not configured here: refused, nothing recorded (a replay after staff point the
    shop at a configured gateway authorizes there)."""
    CANCELLED = "cancelled"
    """Cancelled before it was authorized: the payment is recorded as cancelled, no gateway call."""
    REPEATED = "repeated"
    """The same order was accepted before under another event id, whose authorization stands: nothing."""
    AUTHORIZE = "authorize"
    """The intent is recorded (kept if it was recorded before), then the gateway is called with this message's key."""


@dataclass(frozen=True)
class AuthorizationFacts:
    """What an authorization decides on, read in one statement with the payment row."""

    processed: bool
    """The inbox holds the message: its result unit of work committed."""
    cancelled: bool
    payment_exists: bool
    payment_gateway: str | None
    """The gateway the existing payment started on."""
    shop_gateway: str
    """The gateway the shop takes new card payments on."""
    capture_at_authorization: bool
    authorize_keys: tuple[str, ...]
    """Idempotency keys of the order's authorizations so far, oldest first."""


@dataclass(frozen=True)
class AuthorizationPlan:
    """The decision, the gateway it goes to, and whether the shop captures at once."""

    step: Authorization
    gateway: str
    capture_now: bool = False


def plan_authorization(facts: AuthorizationFacts, key: str, configured: Collection[str]) -> AuthorizationPlan:
    """What authorizing an accepted card order under idempotency `key` does, given the gateways `configured` here.

    An intent recorded before under the same key (its result never recorded) is called again with that key, so the
    gateway answers once; an authorization under another key means the order was accepted again and nothing is done.
    """
    gateway = facts.payment_gateway if facts.payment_exists and facts.payment_gateway else facts.shop_gateway
    if facts.processed:
        return AuthorizationPlan(Authorization.DUPLICATE, gateway)
    if facts.cancelled:
        return AuthorizationPlan(Authorization.CANCELLED, gateway)
    if gateway not in configured:
        return AuthorizationPlan(Authorization.GATEWAY_MISSING, gateway)
    if facts.authorize_keys and facts.authorize_keys != (key,):
        return AuthorizationPlan(Authorization.REPEATED, gateway)
    return AuthorizationPlan(Authorization.AUTHORIZE, gateway, capture_now=facts.capture_at_authorization)


class Capture(StrEnum):
    """What a message saying the order has shipped in full does about the payment."""

    DUPLICATE = "duplicate"
    """Its result is recorded already: nothing more."""
    CAPTURE = "capture"
    """The intent is recorded and the payment marked capturing, then the gateway (or the deferred-payment provider,
    whose capture is the shipment report) is called."""
    RETRY = "retry"
    """A capture was left in flight (its intent committed, its result not): the call is made again."""
    NO_CALL = "no_call"
    """No capture at a gateway: settled with nothing to pay, or nothing to do."""


@dataclass(frozen=True)
class CaptureFacts:
    """What a capture on shipment decides on, read in one statement with the payment row (None: no payment yet)."""

    processed: bool
    method: str | None
    status: str | None
    cancelled: bool
    amount: int
    authorized: int


@dataclass(frozen=True)
class CapturePlan:
    """The decision and the amount captured; `reports_shipment`: a deferred payment, captured by the shipment
    report to the provider."""

    step: Capture
    amount: int = 0
    reports_shipment: bool = False


def plan_capture(facts: CaptureFacts) -> CapturePlan:
    """What a shipment that completes the order does: capture an authorized card (what the edits left of it), report
    the shipment of an approved deferred payment (its whole amount), call again for a capture left in flight; an
    order cancelled, captured already or with nothing at a gateway is not captured here."""
    if facts.processed:
        return CapturePlan(Capture.DUPLICATE)
    if facts.status is None:
        return CapturePlan(Capture.NO_CALL)
    deferred = facts.method == "deferred"
    amount = facts.amount if deferred else capture_amount(facts.amount, facts.authorized)
    if captures_on_shipment(facts.status, facts.cancelled) or reports_shipment(
        facts.method, facts.status, facts.cancelled, all_shipped=True
    ):
        return CapturePlan(Capture.CAPTURE, amount, reports_shipment=deferred)
    if facts.status == "capturing":
        return CapturePlan(Capture.RETRY, amount, reports_shipment=deferred)
    return CapturePlan(Capture.NO_CALL)
