"""The payment gateway port and the adapter for the local sandbox gateway's HTTP API."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ordermesh_servicekit.consuming import PermanentError

from ordermesh_servicekit.json_http import JsonHttp


@dataclass(frozen=True)
class GatewayResult:
    """A gateway's final answer: approved with an id, or refused with a reason."""

    approved: bool
    reference: str | None = None
    reason: str | None = None
    amount: int | None = None


class PaymentGateway(Protocol):
    """What ordermesh needs of a card gateway; every call is idempotent by its key."""

    async def authorize(
        self, *, idempotency_key: str, order_id: str, amount: int, currency: str, card_token: str
    ) -> GatewayResult:
        """Reserves `amount` on the card."""
        ...

    async def capture(self, *, idempotency_key: str, authorization_id: str, amount: int) -> GatewayResult:
        """Takes up to the authorized amount."""
        ...

    async def void(self, *, idempotency_key: str, authorization_id: str) -> GatewayResult:
        """Releases an uncaptured authorization."""
        ...

    async def refund(self, *, idempotency_key: str, capture_id: str, amount: int) -> GatewayResult:
        """Returns part or all of a capture to the customer."""
        ...


class SandboxGateway:
    """The local sandbox gateway over HTTP. 5xx is retried a few times and then a refusal; no answer is transient."""

    def __init__(self, client: JsonHttp, *, server_error_attempts: int = 3) -> None:
        self._client = client
        self._server_error_attempts = server_error_attempts

    async def authorize(
        self, *, idempotency_key: str, order_id: str, amount: int, currency: str, card_token: str
    ) -> GatewayResult:
        body = await self._post(
            "/v1/authorizations",
            "POST /v1/authorizations",
            {
                "idempotency_key": idempotency_key,
                "order_id": order_id,
                "amount": amount,
                "currency": currency,
                "card_token": card_token,
            },
        )
        if body.get("status") == "authorized":
            return GatewayResult(True, reference=body["authorization_id"], amount=body["amount"])
        return GatewayResult(False, reason=body.get("decline_code") or body.get("error") or "declined")

    async def capture(self, *, idempotency_key: str, authorization_id: str, amount: int) -> GatewayResult:
        body = await self._post(
            f"/v1/authorizations/{authorization_id}/capture",
            "POST /v1/authorizations/:id/capture",
            {"idempotency_key": idempotency_key, "amount": amount},
        )
        if body.get("status") == "captured":
            return GatewayResult(True, reference=body["capture_id"], amount=body["amount"])
        return GatewayResult(False, reason=body.get("error") or "capture_refused")

    async def void(self, *, idempotency_key: str, authorization_id: str) -> GatewayResult:
        body = await self._post(
            f"/v1/authorizations/{authorization_id}/void", "POST /v1/authorizations/:id/void",
            {"idempotency_key": idempotency_key},
        )
        if body.get("status") == "voided":
            return GatewayResult(True, reference=authorization_id)
        return GatewayResult(False, reason=body.get("error") or "void_refused")

    async def refund(self, *, idempotency_key: str, capture_id: str, amount: int) -> GatewayResult:
        body = await self._post(
            "/v1/refunds", "POST /v1/refunds", {"idempotency_key": idempotency_key, "capture_id": capture_id, "amount": amount}
        )
        if body.get("status") == "refunded":
            return GatewayResult(True, reference=body["refund_id"], amount=body["amount"])
        return GatewayResult(False, reason=body.get("error") or "refund_refused")

    async def _post(self, path: str, operation: str, payload: dict) -> dict:
        for _attempt in range(self._server_error_attempts):
            response = await self._client.request("POST", path, payload, operation=operation)
            if response.status_code < 500:
                return response.json()
        return {"status": "error", "error": "gateway_error"}


SANDBOX = "sandbox"


class Gateways:
    """The card gateways this service is configured with, by name; a payment goes back to the one it started on."""

    def __init__(self, gateways: dict[str, PaymentGateway]) -> None:
        self._gateways = dict(gateways)
        self._names = frozenset(self._gateways)

    def configured(self, name: str) -> bool:
        """Whether the named gateway can be used."""
        return name in self._gateways

    def names(self) -> frozenset[str]:
        """The names of the gateways that can be used."""
        return self._names

    def named(self, name: str | None) -> PaymentGateway:
        """The gateway called `name` (a payment with none recorded started on the sandbox)."""
        name = name or SANDBOX
        if name not in self._gateways:
            raise PermanentError(f"card gateway {name} is not configured on the payments service")
        return self._gateways[name]

    def of(self, payment: Mapping[str, Any]) -> PaymentGateway:
        """The gateway the payment's authorization was made on."""
        return self.named(payment["gateway"])
