"""Sandbox warehouse: accepts shipment requests and reports them shipped via signed callbacks.

Its callbacks go out on one long-lived aiohttp session (keep-alive to shipping): with httpx (and uvicorn's h11 parser)
this sandbox took 5-8 CPU ms per order, as much as a service; with aiohttp and httptools 1.6-1.9.
"""

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ordermesh_servicekit.http_server import BoundedHttpToolsProtocol
from ordermesh_servicekit.signing import sign

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Ordermesh-Signature"
SECRET_ENV = "WAREHOUSE_CALLBACK_SECRET"
_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 10.0


class _BadRequest(Exception):
    """The request body is not acceptable; answered with 400."""


@dataclass
class _ShipmentRequest:
    request_id: str
    shipment_id: str
    order_id: str
    carrier: str
    callback_url: str
    lines: list[dict[str, Any]]
    status: str = "accepted"  # accepted | picked | cancelled | shipped | delivered
    report_shipped: bool = True
    cash_on_delivery: int | None = None
    runaway: bool = False


PICKED_SKU_PREFIX = "PICKED-"
"""A request with a line whose sku starts with this is picked at once: a cancel is answered 409 already_picked."""

DOWN_SKU_PREFIX = "DOWN-"
"""A request with a line whose sku starts with this is always answered 503: the warehouse is down for it."""

FLAKY_SKU_PREFIX = "FLAKY-"
"""The first `FLAKY_FAILURES` tries of such a request (per idempotency key) are answered 503, then it is taken."""

FLAKY_FAILURES = 2

REJECT_SKU_PREFIX = "REJECT-"
"""A request with such a line is refused with 422 `unserviceable`: retrying can't help."""

SLOW_SKU_PREFIX = "SLOW-"
"""The first try of such a request is taken at once but answered only after `stall_s`, longer than a client waits;
a retry with the same idempotency key meanwhile gets the same request id (the parcel still ships once)."""

PARTIAL_SKU_PREFIX = "PARTIAL-"
"""Such a request ships in two parcels, each with its own tracking number: first half of every line (rounded
up), then the rest `ship_delay_s` later."""

RUNAWAY_SKU_PREFIX = "RUNAWAY-"
"""Such a request is held until it is cancelled; the cancel is answered 200, and then the parcel leaves anyway
(goods that left without an order, as when a cancel reaches the packing table too late)."""


def tracking_number(shipment_id: str, parcel: int = 1) -> str:
    """Return the 12-digit tracking number the warehouse assigns to parcel `parcel` of `shipment_id`.

    Eleven digits and a Yamato check digit (the eleven as a number, mod 7), like a real issued number.
    """
    seed = shipment_id if parcel == 1 else f"{shipment_id}/{parcel}"
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    body = int.from_bytes(digest[:8], "big") % 10**11
    return f"{body:011d}{body % 7}"


def parcels_of(lines: list[dict[str, Any]], partial: bool) -> list[list[dict[str, Any]]]:
    """The parcels a request ships in: one, or for a partial shipment the first half of every line (rounded up)
    and then the rest (when anything is left)."""
    if not partial:
        return [lines]
    first = [{"sku": line["sku"], "quantity": (line["quantity"] + 1) // 2} for line in lines]
    rest = [{"sku": line["sku"], "quantity": line["quantity"] // 2} for line in lines if line["quantity"] // 2]
    return [first, rest] if rest else [first]


def _has(lines: list[dict[str, Any]], prefix: str) -> bool:
    return any(line["sku"].startswith(prefix) for line in lines)


def _text(payload: dict[str, Any], field: str) -> str:
    value = payload.get(field)
    if not isinstance(value, str) or not value.strip():
        raise _BadRequest(f"{field} must be a non-empty string")
    return value


def _optional_amount(payload: dict[str, Any], field: str) -> int | None:
    value = payload.get(field)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _BadRequest(f"{field} must be a non-negative integer")
    return value


def _lines(payload: dict[str, Any]) -> list[dict[str, Any]]:
    lines = payload.get("lines")
    if not isinstance(lines, list) or not lines:
        raise _BadRequest("lines must be a non-empty list")
    result = []
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            raise _BadRequest(f"lines[{index}] must be an object")
        sku = line.get("sku")
        quantity = line.get("quantity")
        if not isinstance(sku, str) or not sku.strip():
            raise _BadRequest(f"lines[{index}].sku must be a non-empty string")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
            raise _BadRequest(f"lines[{index}].quantity must be a positive integer")
        result.append({"sku": sku, "quantity": quantity})
    return result


class Warehouse:
    """State of the sandbox warehouse and its pending shipped-callbacks.

    A request is shipped `ship_delay_s` after it was accepted; from then on it
    can no longer be cancelled, and its callback is retried with exponential
    backoff until the receiver answers 2xx or the app shuts down.
    A request with `"report_shipped": false` is packed but never reported shipped
    (its labels and tracking numbers come from a carrier CSV round trip).
    A request with a line whose sku starts with `PICKED-` is picked at once:
    cancelling it is answered 409 `already_picked` (as a real warehouse answers
    once a parcel is on the packing table), which is how tests ask for that on demand.
    With `deliver_delay_s` set, a second callback of type "delivered" follows the
    shipped one after that delay, with `cash_collected` = the request's
    `cash_on_delivery` amount (null when there is none).
    Failures, delays, partial and runaway shipments are asked for the same way,
    by sku prefix: `DOWN-`, `FLAKY-`, `REJECT-`, `SLOW-`, `PARTIAL-`, `RUNAWAY-`
    (see the constants above).
    """

    def __init__(
        self,
        *,
        secret: str,
        ship_delay_s: float = 1.0,
        callback_timeout_s: float = 10.0,
        deliver_delay_s: float | None = None,
        stall_s: float = 15.0,
    ) -> None:
        self.secret = secret
        self.stall_s = stall_s
        self._tries: dict[str, int] = {}  # idempotency key -> tries answered 503 (FLAKY-)
        self.ship_delay_s = ship_delay_s
        self.deliver_delay_s = deliver_delay_s
        self.callback_timeout_s = callback_timeout_s
        self._requests: dict[str, _ShipmentRequest] = {}
        self._by_key: dict[str, tuple[str, str]] = {}  # idempotency key -> (fingerprint, request_id)
        self._tasks: set[asyncio.Task[None]] | None = None
        self._http: aiohttp.ClientSession | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Own the callback HTTP session and the pending callback tasks for the app's lifetime."""
        self._tasks = set()
        # Bounds the wait for a connection and for each read, as httpx's timeout did.
        timeout = aiohttp.ClientTimeout(total=None, connect=self.callback_timeout_s, sock_read=self.callback_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as http:
            self._http = http
            try:
                yield
            finally:
                tasks, self._tasks = self._tasks, None
                for task in tasks:
                    task.cancel()
                if tasks:
                    logger.info("cancelling %d pending shipment task(s)", len(tasks))
                    await asyncio.gather(*tasks, return_exceptions=True)
                self._http = None

    def _spawn(self, shipment: _ShipmentRequest) -> None:
        assert self._tasks is not None
        task = asyncio.create_task(self._ship(shipment), name=f"ship-{shipment.request_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ship(self, shipment: _ShipmentRequest) -> None:
        parcels = parcels_of(shipment.lines, _has(shipment.lines, PARTIAL_SKU_PREFIX))
        for number, lines in enumerate(parcels, start=1):
            await asyncio.sleep(self.ship_delay_s)
            if shipment.status == "cancelled" and not shipment.runaway:
                return
            if not shipment.runaway:
                shipment.status = "shipped"
            event = {
                "event_id": str(uuid.uuid4()),
                "type": "shipped",
                "request_id": shipment.request_id,
                "shipment_id": shipment.shipment_id,
                "order_id": shipment.order_id,
                "carrier": shipment.carrier,
                "tracking_number": tracking_number(shipment.shipment_id, number),
                "shipped_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "lines": lines,
                "parcel": number,
                "parcels": len(parcels),
            }
            body = json.dumps(event, separators=(",", ":")).encode("utf-8")
            logger.info("shipped %s (%s) parcel %d/%d, reporting to %s", shipment.request_id, shipment.shipment_id,
                        number, len(parcels), shipment.callback_url)
            await self._deliver(shipment, body)
        if self.deliver_delay_s is None or shipment.runaway:
            return
        await asyncio.sleep(self.deliver_delay_s)
        shipment.status = "delivered"
        delivered = {
            "event_id": str(uuid.uuid4()),
            "type": "delivered",
            "request_id": shipment.request_id,
            "shipment_id": shipment.shipment_id,
            "order_id": shipment.order_id,
            "delivered_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cash_collected": shipment.cash_on_delivery,
        }
        await self._deliver(shipment, json.dumps(delivered, separators=(",", ":")).encode("utf-8"))

    async def _deliver(self, shipment: _ShipmentRequest, body: bytes) -> None:
        backoff = _FIRST_BACKOFF_S
        attempt = 0
        while True:
            attempt += 1
            assert self._http is not None
            # Signed afresh per attempt: a long outage must not make the timestamp stale.
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(self.secret, body, int(time.time())),
            }
            try:
                async with self._http.post(
                    shipment.callback_url, data=body, headers=headers, allow_redirects=False
                ) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                logger.warning("callback for %s attempt %d failed: %r; retrying in %.1fs",
                               shipment.request_id, attempt, exc, backoff)
            else:
                if 200 <= status < 300:
                    logger.info("callback for %s delivered on attempt %d", shipment.request_id, attempt)
                    return
                if status == 409:  # accepted by an earlier attempt whose answer was lost
                    logger.info("callback for %s was already accepted (attempt %d)", shipment.request_id, attempt)
                    return
                logger.warning("callback for %s attempt %d got HTTP %d; retrying in %.1fs",
                               shipment.request_id, attempt, status, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_S)

    async def create_shipment(self, request: Request) -> JSONResponse:
        """POST /v1/shipments: accept a shipment request (idempotent by `idempotency_key`)."""
        if self._tasks is None:
            return JSONResponse({"error": "not_running", "reason": "app lifespan not started"},
                                status_code=503)
        try:
            try:
                payload = json.loads(await request.body())
            except (ValueError, UnicodeDecodeError) as exc:
                raise _BadRequest(f"body is not valid JSON: {exc}") from None
            if not isinstance(payload, dict):
                raise _BadRequest("body must be a JSON object")
            key = _text(payload, "idempotency_key")
            callback_url = _text(payload, "callback_url")
            parts = urlsplit(callback_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise _BadRequest("callback_url must be an absolute http(s) URL")
            shipment = _ShipmentRequest(
                request_id=f"wr_{secrets.token_hex(12)}",
                shipment_id=_text(payload, "shipment_id"),
                order_id=_text(payload, "order_id"),
                carrier=_text(payload, "carrier"),
                callback_url=callback_url,
                lines=_lines(payload),
                report_shipped=payload.get("report_shipped", True) is not False,
                cash_on_delivery=_optional_amount(payload, "cash_on_delivery"),
            )
        except _BadRequest as exc:
            return JSONResponse({"error": "invalid_request", "reason": str(exc)}, status_code=400)

        if _has(shipment.lines, DOWN_SKU_PREFIX):
            return JSONResponse({"error": "unavailable", "reason": "warehouse system down"}, status_code=503)
        if _has(shipment.lines, REJECT_SKU_PREFIX):
            return JSONResponse({"error": "unserviceable", "reason": "this warehouse does not stock these items"},
                                status_code=422)
        if _has(shipment.lines, FLAKY_SKU_PREFIX) and key not in self._by_key:
            self._tries[key] = self._tries.get(key, 0) + 1
            if self._tries[key] <= FLAKY_FAILURES:
                return JSONResponse({"error": "unavailable", "reason": "try again"}, status_code=503)
        fingerprint = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        known = self._by_key.get(key)
        if known is not None:
            known_fingerprint, request_id = known
            if known_fingerprint != fingerprint:
                return JSONResponse(
                    {"error": "idempotency_key_reused",
                     "reason": "this idempotency_key was used with a different request"},
                    status_code=409,
                )
            return JSONResponse({"request_id": request_id, "status": "accepted"}, status_code=202,
                                headers={"Idempotent-Replayed": "true"})
        self._by_key[key] = (fingerprint, shipment.request_id)
        if _has(shipment.lines, PICKED_SKU_PREFIX):
            shipment.status = "picked"
        shipment.runaway = _has(shipment.lines, RUNAWAY_SKU_PREFIX)
        self._requests[shipment.request_id] = shipment
        if shipment.report_shipped and not shipment.runaway:
            self._spawn(shipment)
        logger.info("accepted shipment %s for order %s as %s", shipment.shipment_id,
                    shipment.order_id, shipment.request_id)
        if _has(shipment.lines, SLOW_SKU_PREFIX):
            await asyncio.sleep(self.stall_s)
        return JSONResponse({"request_id": shipment.request_id, "status": "accepted"}, status_code=202)

    async def cancel_shipment(self, request: Request) -> JSONResponse:
        """POST /v1/shipments/{request_id}/cancel: cancel unless already shipped."""
        shipment = self._requests.get(request.path_params["request_id"])
        if shipment is None:
            return JSONResponse({"error": "shipment_request_not_found"}, status_code=404)
        if shipment.status in ("shipped", "delivered"):
            return JSONResponse({"error": "already_shipped"}, status_code=409)
        if shipment.status == "picked":
            return JSONResponse({"error": "already_picked"}, status_code=409)
        was_cancelled, shipment.status = shipment.status == "cancelled", "cancelled"
        logger.info("cancelled %s", shipment.request_id)
        if shipment.runaway and not was_cancelled:
            self._spawn(shipment)
        return JSONResponse({"status": "cancelled"})

    async def healthz(self, request: Request) -> JSONResponse:
        """GET /healthz: liveness."""
        return JSONResponse({"status": "ok"})


def create_app(
    *,
    secret: str,
    ship_delay_s: float = 1.0,
    callback_timeout_s: float = 10.0,
    deliver_delay_s: float | None = None,
    stall_s: float = 15.0,
) -> Starlette:
    """Build the warehouse ASGI app; its state lives in `app.state.warehouse`.

    Shipping needs the lifespan to run (uvicorn does; httpx.ASGITransport does not).
    """
    if not secret:
        raise ValueError("the callback signing secret must not be empty")
    warehouse = Warehouse(
        secret=secret,
        ship_delay_s=ship_delay_s,
        callback_timeout_s=callback_timeout_s,
        deliver_delay_s=deliver_delay_s,
        stall_s=stall_s,
    )
    app = Starlette(
        routes=[
            Route("/v1/shipments", warehouse.create_shipment, methods=["POST"]),
            Route("/v1/shipments/{request_id}/cancel", warehouse.cancel_shipment, methods=["POST"]),
            Route("/healthz", warehouse.healthz, methods=["GET"]),
        ],
        lifespan=warehouse.lifespan,
    )
    app.state.warehouse = warehouse
    return app


def main(argv: list[str] | None = None) -> None:
    """Run the warehouse: `python -m ordermesh_devstack.sandboxes.warehouse --port N --secret S`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", default=os.environ.get(SECRET_ENV),
                        help=f"callback signing secret (default: ${SECRET_ENV})")
    parser.add_argument("--ship-delay", type=float, default=1.0,
                        help="seconds between accepting and shipping a request")
    parser.add_argument("--deliver-delay", type=float, default=None,
                        help="seconds between shipped and a 'delivered' callback (default: never delivered)")
    parser.add_argument("--stall", type=float, default=15.0,
                        help="seconds a SLOW- request's first try waits before it is answered")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error(f"--secret or ${SECRET_ENV} is required")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(
        secret=args.secret, ship_delay_s=args.ship_delay, deliver_delay_s=args.deliver_delay, stall_s=args.stall
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(), loop="uvloop",
                http=BoundedHttpToolsProtocol)


if __name__ == "__main__":
    main()
