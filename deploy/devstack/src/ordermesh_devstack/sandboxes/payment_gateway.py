"""Sandbox payment gateway (cards and deferred-payment credit checks): in-memory, deterministic by card token,
amount or customer id, idempotent by key."""

import argparse
import asyncio
import contextlib
import json
import logging
import re
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ordermesh_servicekit.http_server import BoundedHttpToolsProtocol

logger = logging.getLogger(__name__)

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_DECLINES = {
    "tok_decline": "card_declined",
    "tok_insufficient_funds": "insufficient_funds",
}
# Amounts ending in these digits are never a real price here (prices are multiples of 10), so a test can make one
# authorization (e.g. the re-authorization after an edit) or one credit check fail without touching the others.
DECLINED_AMOUNT_ENDING = 402
REJECTED_CREDIT_AMOUNT_ENDING = 403

Outcome = tuple[int, dict[str, Any]]


class _BadRequest(Exception):
    """The request body is not acceptable; answered with 400 and never stored."""


@dataclass
class _Stored:
    fingerprint: str
    status_code: int
    body: dict[str, Any]


@dataclass
class _Authorization:
    authorization_id: str
    order_id: str
    amount: int
    currency: str
    status: str  # authorized | captured | voided
    capture_id: str | None = None


@dataclass
class _CreditCheck:
    check_id: str
    order_id: str
    customer_id: str
    amount: int
    currency: str
    status: str  # pending | approved | rejected | captured | cancelled
    decides_as: str  # what a pending check becomes once polled enough
    polls_left: int
    reason: str | None = None
    capture_id: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None


@dataclass
class _Capture:
    capture_id: str
    authorization_id: str
    amount: int
    currency: str
    refunded: int = 0


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        payload = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise _BadRequest("body must be a JSON object")
    return payload


def _text(payload: dict[str, Any], field: str) -> str:
    value = payload.get(field)
    if not isinstance(value, str) or not value.strip():
        raise _BadRequest(f"{field} must be a non-empty string")
    return value


def _amount(payload: dict[str, Any]) -> int:
    value = payload.get("amount")
    # bool is a subclass of int, and `true` is not an amount.
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise _BadRequest("amount must be a positive integer in minor units")
    return value


class PaymentGateway:
    """In-memory state and request handling of the sandbox gateway.

    Card outcomes depend on the card token: `tok_decline` and
    `tok_insufficient_funds` are declined (402), `tok_error` fails with 500
    (not stored, so a retry fails again), `tok_slow` approves after
    `slow_delay_s`, `tok_timeout` approves after `timeout_delay_s` (the
    authorization is stored, so a caller that gave up and retries with the
    same key gets it), every other `tok_*` approves — except an amount ending
    in 402, which is declined with `amount_declined` whatever the token.

    Credit checks (deferred payment) depend on the customer id and amount:
    `credit-reject…` is rejected, `credit-pending-reject…` is pending and then
    rejected, `credit-pending…` is pending and then approved (decided by the
    `credit_pending_polls`-th status read), an amount ending in 403 is
    rejected (`credit_limit_exceeded`), everything else is approved at once.
    """

    def __init__(
        self, *, slow_delay_s: float = 2.0, timeout_delay_s: float = 60.0, credit_pending_polls: int = 1
    ) -> None:
        self.slow_delay_s = slow_delay_s
        self.timeout_delay_s = timeout_delay_s
        self.credit_pending_polls = credit_pending_polls
        self._credit_checks: dict[str, _CreditCheck] = {}
        self._stored: dict[str, _Stored] = {}
        self._key_locks: dict[str, asyncio.Lock] = {}
        self._authorizations: dict[str, _Authorization] = {}
        self._captures: dict[str, _Capture] = {}

    async def _once(
        self, key: str, fingerprint: str, execute: Callable[[], Awaitable[Outcome]]
    ) -> JSONResponse:
        # A retry that arrives while the first attempt is still running (tok_slow,
        # tok_timeout) waits for it and replays its outcome instead of acting twice.
        lock = self._key_locks.setdefault(key, asyncio.Lock())
        async with lock:
            stored = self._stored.get(key)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    logger.info("idempotency key %s reused with a different request", key)
                    return JSONResponse(
                        {"error": "idempotency_key_reused",
                         "reason": "this idempotency_key was used with a different request"},
                        status_code=409,
                    )
                logger.info("replaying stored response for idempotency key %s", key)
                return JSONResponse(
                    stored.body, status_code=stored.status_code,
                    headers={"Idempotent-Replayed": "true"},
                )
            status_code, body = await execute()
            if status_code < 500:
                self._stored[key] = _Stored(fingerprint, status_code, body)
            return JSONResponse(body, status_code=status_code)

    async def _handle(
        self,
        request: Request,
        validate: Callable[[dict[str, Any]], Callable[[], Awaitable[Outcome]]],
    ) -> JSONResponse:
        try:
            payload = await _json_object(request)
            key = _text(payload, "idempotency_key")
            execute = validate(payload)
        except _BadRequest as exc:
            return JSONResponse({"error": "invalid_request", "reason": str(exc)}, status_code=400)
        fingerprint = request.url.path + "\n" + json.dumps(
            payload, sort_keys=True, separators=(",", ":")
        )
        return await self._once(key, fingerprint, execute)

    async def authorize(self, request: Request) -> JSONResponse:
        """POST /v1/authorizations: authorize `amount` on `card_token`."""

        def validate(payload: dict[str, Any]) -> Callable[[], Awaitable[Outcome]]:
            order_id = _text(payload, "order_id")
            amount = _amount(payload)
            currency = _text(payload, "currency")
            if not _CURRENCY.match(currency):
                raise _BadRequest("currency must be a three-letter upper-case ISO 4217 code")
            card_token = _text(payload, "card_token")
            if not card_token.startswith("tok_"):
                raise _BadRequest("card_token must start with tok_")
            return lambda: self._authorize(order_id, amount, currency, card_token)

        return await self._handle(request, validate)

    async def _authorize(self, order_id: str, amount: int, currency: str, card_token: str) -> Outcome:
        if card_token == "tok_error":
            logger.warning("authorization for order %s: simulated gateway error", order_id)
            return 500, {"error": "gateway_error"}
        if card_token == "tok_slow":
            await asyncio.sleep(self.slow_delay_s)
        elif card_token == "tok_timeout":
            await asyncio.sleep(self.timeout_delay_s)
        decline_code = _DECLINES.get(card_token)
        if amount % 1000 == DECLINED_AMOUNT_ENDING:
            decline_code = "amount_declined"
        if decline_code is not None:
            logger.info("authorization for order %s declined: %s", order_id, decline_code)
            return 402, {"status": "declined", "decline_code": decline_code}
        authorization = _Authorization(_new_id("auth"), order_id, amount, currency, "authorized")
        self._authorizations[authorization.authorization_id] = authorization
        logger.info(
            "authorized %s %s for order %s as %s",
            amount, currency, order_id, authorization.authorization_id,
        )
        return 200, {
            "authorization_id": authorization.authorization_id,
            "status": "authorized",
            "amount": amount,
            "currency": currency,
        }

    async def capture(self, request: Request) -> JSONResponse:
        """POST /v1/authorizations/{authorization_id}/capture: capture up to the authorized amount."""
        authorization_id = request.path_params["authorization_id"]

        def validate(payload: dict[str, Any]) -> Callable[[], Awaitable[Outcome]]:
            amount = _amount(payload)
            return lambda: self._capture(authorization_id, amount)

        return await self._handle(request, validate)

    async def _capture(self, authorization_id: str, amount: int) -> Outcome:
        authorization = self._authorizations.get(authorization_id)
        if authorization is None:
            return 404, {"error": "authorization_not_found"}
        if authorization.status == "voided":
            return 409, {"error": "authorization_voided"}
        if authorization.status == "captured":
            return 409, {"error": "already_captured"}
        if amount > authorization.amount:
            return 422, {"error": "amount_exceeds_authorization"}
        capture = _Capture(_new_id("cap"), authorization_id, amount, authorization.currency)
        self._captures[capture.capture_id] = capture
        authorization.status = "captured"
        authorization.capture_id = capture.capture_id
        logger.info("captured %s of %s as %s", amount, authorization_id, capture.capture_id)
        return 200, {"capture_id": capture.capture_id, "status": "captured", "amount": amount}

    async def void(self, request: Request) -> JSONResponse:
        """POST /v1/authorizations/{authorization_id}/void: release an uncaptured authorization."""
        authorization_id = request.path_params["authorization_id"]
        return await self._handle(request, lambda payload: lambda: self._void(authorization_id))

    async def _void(self, authorization_id: str) -> Outcome:
        authorization = self._authorizations.get(authorization_id)
        if authorization is None:
            return 404, {"error": "authorization_not_found"}
        if authorization.status == "captured":
            return 409, {"error": "already_captured"}
        authorization.status = "voided"
        logger.info("voided %s", authorization_id)
        return 200, {"status": "voided"}

    async def refund(self, request: Request) -> JSONResponse:
        """POST /v1/refunds: refund part or all of what is left of a capture."""

        def validate(payload: dict[str, Any]) -> Callable[[], Awaitable[Outcome]]:
            capture_id = _text(payload, "capture_id")
            amount = _amount(payload)
            return lambda: self._refund(capture_id, amount)

        return await self._handle(request, validate)

    async def _refund(self, capture_id: str, amount: int) -> Outcome:
        capture = self._captures.get(capture_id)
        if capture is None:
            return 404, {"error": "capture_not_found"}
        if amount > capture.amount - capture.refunded:
            return 422, {"error": "amount_exceeds_refundable"}
        capture.refunded += amount
        refund_id = _new_id("re")
        logger.info("refunded %s of %s as %s", amount, capture_id, refund_id)
        return 200, {"refund_id": refund_id, "status": "refunded", "amount": amount}

    async def list_authorizations(self, request: Request) -> JSONResponse:
        """GET /v1/authorizations?order_id=: the gateway's own record of authorizations (all, or one order's)."""
        order_id = request.query_params.get("order_id")
        found = [
            {
                "authorization_id": a.authorization_id,
                "order_id": a.order_id,
                "amount": a.amount,
                "currency": a.currency,
                "status": a.status,
                "capture_id": a.capture_id,
                "captured": self._captures[a.capture_id].amount if a.capture_id else 0,
                "refunded": self._captures[a.capture_id].refunded if a.capture_id else 0,
            }
            for a in self._authorizations.values()
            if order_id is None or a.order_id == order_id
        ]
        return JSONResponse({"authorizations": found})

    async def request_credit_check(self, request: Request) -> JSONResponse:
        """POST /v1/credit-checks: check the customer's credit for `amount` (deferred payment)."""

        def validate(payload: dict[str, Any]) -> Callable[[], Awaitable[Outcome]]:
            order_id = _text(payload, "order_id")
            customer_id = _text(payload, "customer_id")
            amount = _amount(payload)
            currency = _text(payload, "currency")
            if not _CURRENCY.match(currency):
                raise _BadRequest("currency must be a three-letter upper-case ISO 4217 code")
            return lambda: self._request_credit_check(order_id, customer_id, amount, currency)

        return await self._handle(request, validate)

    async def _request_credit_check(self, order_id: str, customer_id: str, amount: int, currency: str) -> Outcome:
        if customer_id.startswith("credit-reject") or amount % 1000 == REJECTED_CREDIT_AMOUNT_ENDING:
            status, decides_as = "rejected", "rejected"
        elif customer_id.startswith("credit-pending-reject"):
            status, decides_as = "pending", "rejected"
        elif customer_id.startswith("credit-pending"):
            status, decides_as = "pending", "approved"
        else:
            status, decides_as = "approved", "approved"
        check = _CreditCheck(
            _new_id("cc"), order_id, customer_id, amount, currency, status, decides_as, self.credit_pending_polls,
            reason="credit_limit_exceeded" if status == "rejected" else None,
        )
        self._credit_checks[check.check_id] = check
        logger.info("credit check %s for order %s: %s", check.check_id, order_id, status)
        return 200, self._credit_body(check)

    @staticmethod
    def _credit_body(check: _CreditCheck) -> dict[str, Any]:
        return {
            "check_id": check.check_id, "order_id": check.order_id, "status": check.status, "amount": check.amount,
            "currency": check.currency, "reason": check.reason, "capture_id": check.capture_id,
            "carrier": check.carrier, "tracking_number": check.tracking_number,
        }

    async def credit_check(self, request: Request) -> JSONResponse:
        """GET /v1/credit-checks/{check_id}: the check's state; each read of a pending check brings its decision nearer."""
        check = self._credit_checks.get(request.path_params["check_id"])
        if check is None:
            return JSONResponse({"error": "credit_check_not_found"}, status_code=404)
        if check.status == "pending":
            check.polls_left -= 1
            if check.polls_left <= 0:
                check.status = check.decides_as
                check.reason = "credit_limit_exceeded" if check.status == "rejected" else None
                logger.info("credit check %s decided: %s", check.check_id, check.status)
        return JSONResponse(self._credit_body(check))

    async def list_credit_checks(self, request: Request) -> JSONResponse:
        """GET /v1/credit-checks?order_id=: the provider's own record of credit checks (all, or one order's)."""
        order_id = request.query_params.get("order_id")
        found = [self._credit_body(c) for c in self._credit_checks.values() if order_id is None or c.order_id == order_id]
        return JSONResponse({"credit_checks": found})

    async def update_credit_amount(self, request: Request) -> JSONResponse:
        """POST /v1/credit-checks/{check_id}/amount: lower the amount of a checked transaction (raising needs a new check)."""
        check_id = request.path_params["check_id"]

        def validate(payload: dict[str, Any]) -> Callable[[], Awaitable[Outcome]]:
            amount = _amount(payload)
            return lambda: self._update_credit_amount(check_id, amount)

        return await self._handle(request, validate)

    async def _update_credit_amount(self, check_id: str, amount: int) -> Outcome:
        check = self._credit_checks.get(check_id)
        if check is None:
            return 404, {"error": "credit_check_not_found"}
        if check.status not in ("pending", "approved"):
            return 409, {"error": f"credit_check_{check.status}"}
        if amount > check.amount:
            return 422, {"error": "amount_exceeds_check"}
        check.amount = amount
        logger.info("credit check %s amount lowered to %s", check_id, amount)
        return 200, {**self._credit_body(check), "status": "updated"}

    async def report_shipment(self, request: Request) -> JSONResponse:
        """POST /v1/credit-checks/{check_id}/shipment: the shipment report (carrier, tracking number) is the capture."""
        check_id = request.path_params["check_id"]

        def validate(payload: dict[str, Any]) -> Callable[[], Awaitable[Outcome]]:
            carrier = _text(payload, "carrier")
            tracking_number = _text(payload, "tracking_number")
            return lambda: self._report_shipment(check_id, carrier, tracking_number)

        return await self._handle(request, validate)

    async def _report_shipment(self, check_id: str, carrier: str, tracking_number: str) -> Outcome:
        check = self._credit_checks.get(check_id)
        if check is None:
            return 404, {"error": "credit_check_not_found"}
        if check.status != "approved":
            return 409, {"error": f"credit_check_{check.status}"}
        check.status, check.carrier, check.tracking_number = "captured", carrier, tracking_number
        check.capture_id = _new_id("dcap")
        logger.info("shipment reported for credit check %s as %s", check_id, check.capture_id)
        return 200, {"status": "captured", "capture_id": check.capture_id, "amount": check.amount}

    async def cancel_credit_check(self, request: Request) -> JSONResponse:
        """POST /v1/credit-checks/{check_id}/cancel: cancel the deferred-payment transaction before its shipment report."""
        check_id = request.path_params["check_id"]
        return await self._handle(request, lambda payload: lambda: self._cancel_credit_check(check_id))

    async def _cancel_credit_check(self, check_id: str) -> Outcome:
        check = self._credit_checks.get(check_id)
        if check is None:
            return 404, {"error": "credit_check_not_found"}
        if check.status == "captured":
            return 409, {"error": "already_captured"}
        check.status = "cancelled"
        logger.info("credit check %s cancelled", check_id)
        return 200, {"status": "cancelled", "amount": check.amount}

    async def healthz(self, request: Request) -> JSONResponse:
        """GET /healthz: liveness."""
        return JSONResponse({"status": "ok"})


def create_app(*, slow_delay_s: float = 2.0, timeout_delay_s: float = 60.0, credit_pending_polls: int = 1) -> Starlette:
    """Build the gateway ASGI app; its state lives in `app.state.gateway`."""
    gateway = PaymentGateway(
        slow_delay_s=slow_delay_s, timeout_delay_s=timeout_delay_s, credit_pending_polls=credit_pending_polls
    )
    app = Starlette(
        routes=[
            Route("/v1/authorizations", gateway.authorize, methods=["POST"]),
            Route("/v1/authorizations", gateway.list_authorizations, methods=["GET"]),
            Route("/v1/authorizations/{authorization_id}/capture", gateway.capture, methods=["POST"]),
            Route("/v1/authorizations/{authorization_id}/void", gateway.void, methods=["POST"]),
            Route("/v1/refunds", gateway.refund, methods=["POST"]),
            Route("/v1/credit-checks", gateway.request_credit_check, methods=["POST"]),
            Route("/v1/credit-checks", gateway.list_credit_checks, methods=["GET"]),
            Route("/v1/credit-checks/{check_id}", gateway.credit_check, methods=["GET"]),
            Route("/v1/credit-checks/{check_id}/amount", gateway.update_credit_amount, methods=["POST"]),
            Route("/v1/credit-checks/{check_id}/shipment", gateway.report_shipment, methods=["POST"]),
            Route("/v1/credit-checks/{check_id}/cancel", gateway.cancel_credit_check, methods=["POST"]),
            Route("/healthz", gateway.healthz, methods=["GET"]),
        ]
    )
    app.state.gateway = gateway
    return app


@contextlib.asynccontextmanager
async def served(**delays: float) -> AsyncIterator[tuple[str, "PaymentGateway"]]:
    """Serves the sandbox on a free loopback port inside the running event loop (for tests); yields its base URL and
    its state, to look at what it was asked."""
    app = create_app(**delays)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app.state.gateway
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


def main(argv: list[str] | None = None) -> None:
    """Run the gateway: `python -m ordermesh_devstack.sandboxes.payment_gateway --port N`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slow-delay", type=float, default=2.0, help="seconds tok_slow takes")
    parser.add_argument("--timeout-delay", type=float, default=60.0, help="seconds tok_timeout takes")
    parser.add_argument("--credit-pending-polls", type=int, default=1, help="status reads a pending credit check takes")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(
        slow_delay_s=args.slow_delay, timeout_delay_s=args.timeout_delay, credit_pending_polls=args.credit_pending_polls
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(), loop="uvloop",
                http=BoundedHttpToolsProtocol)


if __name__ == "__main__":
    main()
