"""The deferred-payment provider port (credit check, amount update, shipment report, cancel) and its sandbox adapter."""

from typing import Protocol

from ..domain.credit import CreditAnswer, CreditStatus
from .gateway import GatewayResult
from ordermesh_servicekit.json_http import JsonHttp


class CreditProvider(Protocol):
    """What ordermesh needs of a deferred-payment (post-pay) provider; every change is idempotent by its key."""

    async def request_check(
        self, *, idempotency_key: str, order_id: str, customer_id: str, amount: int, currency: str
    ) -> CreditAnswer:
        """Asks the provider to check the customer's credit for `amount`: approved, rejected or pending."""
        ...

    async def check_status(self, check_id: str) -> CreditAnswer:
        """The provider's current answer about a check (a pending one is decided sooner or later)."""
        ...

    async def update_amount(self, *, idempotency_key: str, check_id: str, amount: int) -> GatewayResult:
        """Lowers the amount of a checked transaction."""
        ...

    async def report_shipment(
        self, *, idempotency_key: str, check_id: str, carrier: str, tracking_number: str
    ) -> GatewayResult:
        """Reports the shipment (carrier and tracking number); for the provider this is the capture."""
        ...

    async def cancel(self, *, idempotency_key: str, check_id: str) -> GatewayResult:
        """Cancels the transaction at the provider before its shipment report."""
        ...


class SandboxCreditProvider:
    """The sandbox gateway's credit-check API over HTTP. 5xx is retried a few times and then a refusal; no answer is
    transient."""

    def __init__(self, client: JsonHttp, *, server_error_attempts: int = 3) -> None:
        self._client = client
        self._server_error_attempts = server_error_attempts

    async def request_check(
        self, *, idempotency_key: str, order_id: str, customer_id: str, amount: int, currency: str
    ) -> CreditAnswer:
        body = await self._call(
            "POST", "/v1/credit-checks", "POST /v1/credit-checks",
            {"idempotency_key": idempotency_key, "order_id": order_id, "customer_id": customer_id, "amount": amount,
             "currency": currency},
        )
        return _answer(body)

    async def check_status(self, check_id: str) -> CreditAnswer:
        return _answer(await self._call("GET", f"/v1/credit-checks/{check_id}", "GET /v1/credit-checks/:id", None))

    async def update_amount(self, *, idempotency_key: str, check_id: str, amount: int) -> GatewayResult:
        body = await self._call(
            "POST", f"/v1/credit-checks/{check_id}/amount", "POST /v1/credit-checks/:id/amount",
            {"idempotency_key": idempotency_key, "amount": amount},
        )
        if body.get("status") == "updated":
            return GatewayResult(True, reference=check_id, amount=body["amount"])
        return GatewayResult(False, reason=body.get("error") or "amount_update_refused")

    async def report_shipment(
        self, *, idempotency_key: str, check_id: str, carrier: str, tracking_number: str
    ) -> GatewayResult:
        body = await self._call(
            "POST", f"/v1/credit-checks/{check_id}/shipment", "POST /v1/credit-checks/:id/shipment",
            {"idempotency_key": idempotency_key, "carrier": carrier, "tracking_number": tracking_number},
        )
        if body.get("status") == "captured":
            return GatewayResult(True, reference=body["capture_id"], amount=body["amount"])
        return GatewayResult(False, reason=body.get("error") or "shipment_report_refused")

    async def cancel(self, *, idempotency_key: str, check_id: str) -> GatewayResult:
        body = await self._call(
            "POST", f"/v1/credit-checks/{check_id}/cancel", "POST /v1/credit-checks/:id/cancel",
            {"idempotency_key": idempotency_key},
        )
        if body.get("status") == "cancelled":
            return GatewayResult(True, reference=check_id, amount=body.get("amount"))
        return GatewayResult(False, reason=body.get("error") or "cancel_refused")

    async def _call(self, method: str, path: str, operation: str, payload: dict | None) -> dict:
        for _attempt in range(self._server_error_attempts):
            response = await self._client.request(method, path, payload, operation=operation)
            if response.status_code < 500:
                return response.json()
        return {"status": "error", "error": "gateway_error"}


def _answer(body: dict) -> CreditAnswer:
    status = "approved" if body.get("status") == "captured" else body.get("status")
    if status in tuple(CreditStatus):
        return CreditAnswer(CreditStatus(status), check_id=body.get("check_id"), reason=body.get("reason"))
    return CreditAnswer(CreditStatus.REJECTED, check_id=body.get("check_id"), reason=body.get("error") or "credit_check_failed")
