"""The Stripe adapter of the payment gateway port: PaymentIntents with manual capture, cancel and refunds."""

from collections.abc import Awaitable
from typing import Any, TypeVar

import stripe
from ordermesh_servicekit.consuming import PermanentError, TransientError
from ordermesh_servicekit.outside import Call, OutsideCalls

from .gateway import GatewayResult

T = TypeVar("T")


def _id_of(value: Any) -> str | None:
    """An id from a field Stripe may return either as an id or as the expanded object."""
    if value is None or isinstance(value, str):
        return value
    return getattr(value, "id", None)


def _decline_reason(error: stripe.StripeError, default: str) -> str:
    """The most precise reason Stripe gave: decline code (e.g. insufficient_funds), else error code."""
    detail = error.error
    return (detail and getattr(detail, "decline_code", None)) or error.code or default


def _answered(call: Call, result: GatewayResult) -> GatewayResult:
    """Records Stripe's answer as the call's outcome (approved or refused, with the reason) and returns it."""
    call.outcome = "approved" if result.approved else "refused"
    if result.reason:
        call.fields["reason"] = result.reason
    return result


class StripeGateway:
    """The Stripe API (or localstripe) through stripe's async client; refusals are results, outages TransientError.

    Authorize creates a confirmed PaymentIntent with ``capture_method="manual"`` and returns its id; capture
    returns the charge id, which refund accepts (a PaymentIntent id works too). Every call carries the ordermesh
    idempotency key as Stripe's Idempotency-Key. Card declines and invalid requests (already captured, refund too
    large, ...) are refusals with Stripe's code; network errors, 5xx, 429 and a rejected API key are transient (the
    message is retried, nothing is recorded as refused), a reused key with other parameters is permanent.

    Each operation is one outside call to "stripe" (span, log line, latency and error metrics through `calls`), with
    outcome approved or refused and Stripe's reason; never the card, the key or the customer.
    """

    def __init__(
        self,
        api_key: str,
        *,
        calls: OutsideCalls,
        api_base: str | None = None,
        timeout_seconds: float = 30.0,
        max_network_retries: int = 2,
    ) -> None:
        self._calls = calls
        self._http = stripe.HTTPXClient(timeout=timeout_seconds)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=self._http,
            max_network_retries=max_network_retries,
        )

    def __repr__(self) -> str:
        return "StripeGateway()"

    async def aclose(self) -> None:
        """Closes the HTTP connection pool."""
        await self._http.close_async()

    async def authorize(
        self, *, idempotency_key: str, order_id: str, amount: int, currency: str, card_token: str
    ) -> GatewayResult:
        """Reserves ``amount`` on the card: a PaymentIntent created, confirmed and left uncaptured."""
        if not card_token:
            return GatewayResult(False, reason="missing_card_token")
        params = {
            "amount": amount,
            "currency": currency.lower(),
            "payment_method": card_token,
            "payment_method_types": ["card"],
            "capture_method": "manual",
            "confirm": True,
            "metadata": {"ordermesh_order_id": order_id},
        }
        async with self._calls.observe("stripe", "authorize") as call:
            intent = await self._send(
                call, "declined", self._client.v1.payment_intents.create_async(params, {"idempotency_key": idempotency_key})
            )
            if isinstance(intent, GatewayResult):
                return intent
            if intent.status == "requires_capture":
                return _answered(call, GatewayResult(True, reference=intent.id, amount=intent.amount))
            failure = getattr(intent, "last_payment_error", None)
            reason = (failure and (getattr(failure, "decline_code", None) or getattr(failure, "code", None))) or (
                f"payment_intent_{intent.status}"
            )
            return _answered(call, GatewayResult(False, reason=reason))

    async def capture(self, *, idempotency_key: str, authorization_id: str, amount: int) -> GatewayResult:
        """Captures ``amount`` (all or part) of the authorized PaymentIntent; the rest is released."""
        async with self._calls.observe("stripe", "capture") as call:
            intent = await self._send(call, "capture_refused", self._client.v1.payment_intents.capture_async(
                authorization_id, {"amount_to_capture": amount}, {"idempotency_key": idempotency_key}
            ))
            if isinstance(intent, GatewayResult):
                return intent
            if intent.status != "succeeded":
                return _answered(call, GatewayResult(False, reason=f"payment_intent_{intent.status}"))
            captured = getattr(intent, "amount_received", None) or amount
            reference = _id_of(getattr(intent, "latest_charge", None)) or intent.id
            return _answered(call, GatewayResult(True, reference=reference, amount=captured))

    async def void(self, *, idempotency_key: str, authorization_id: str) -> GatewayResult:
        """Cancels the uncaptured PaymentIntent, releasing the authorization."""
        async with self._calls.observe("stripe", "void") as call:
            intent = await self._send(call, "void_refused", self._client.v1.payment_intents.cancel_async(
                authorization_id, None, {"idempotency_key": idempotency_key}
            ))
            if isinstance(intent, GatewayResult):
                return intent
            if intent.status != "canceled":
                return _answered(call, GatewayResult(False, reason=f"payment_intent_{intent.status}"))
            return _answered(call, GatewayResult(True, reference=intent.id))

    async def refund(self, *, idempotency_key: str, capture_id: str, amount: int) -> GatewayResult:
        """Refunds ``amount`` of a capture, given as its charge id or its PaymentIntent id."""
        target = "payment_intent" if capture_id.startswith("pi_") else "charge"
        async with self._calls.observe("stripe", "refund") as call:
            refund = await self._send(call, "refund_refused", self._client.v1.refunds.create_async(
                {target: capture_id, "amount": amount}, {"idempotency_key": idempotency_key}
            ))
            if isinstance(refund, GatewayResult):
                return refund
            if refund.status in ("failed", "canceled"):
                reason = getattr(refund, "failure_reason", None) or f"refund_{refund.status}"
                return _answered(call, GatewayResult(False, reason=reason))
            return _answered(call, GatewayResult(True, reference=refund.id, amount=refund.amount))

    @staticmethod
    async def _send(call: Call, refused: str, request: Awaitable[T]) -> T | GatewayResult:
        """Stripe's answer to `request`; a decline or an invalid request is a refusal (with Stripe's reason, else
        `refused`), any other Stripe error is raised as TransientError or PermanentError."""
        try:
            return await request
        except (stripe.CardError, stripe.InvalidRequestError) as error:
            return _answered(call, GatewayResult(False, reason=_decline_reason(error, refused)))
        except stripe.StripeError as error:
            raise StripeGateway._not_a_refusal(call, error) from error

    @staticmethod
    def _not_a_refusal(call: Call, error: stripe.StripeError) -> Exception:
        """TransientError or PermanentError for a Stripe error that says nothing about the payment itself (its class
        and HTTP status go on the call's log line)."""
        operation = call.operation
        call.fields["stripe_error"] = type(error).__name__
        call.fields["status"] = error.http_status
        if isinstance(error, stripe.IdempotencyError):
            return PermanentError(f"Stripe {operation}: idempotency key reused with other parameters")
        # Never Stripe's message: for a rejected key it quotes part of the key.
        status = error.http_status if error.http_status is not None else "no answer"
        return TransientError(f"Stripe {operation} failed: {type(error).__name__} ({status})")
