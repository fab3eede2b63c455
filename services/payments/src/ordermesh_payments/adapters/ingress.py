"""HTTP ingress of the payments service: signed provider callbacks onto `payments.callbacks.v1`, once per provider event."""

import json
import time
from collections.abc import Awaitable, Callable
from uuid import NAMESPACE_URL, uuid5

import asyncpg
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ordermesh_contracts import ProviderPaymentReported, topics
from ordermesh_servicekit.outbox import OutgoingMessage, write_outbox
from ordermesh_servicekit.signing import verify_signature

from .. import store

SIGNATURE_HEADER = "X-Ordermesh-Signature"


def payment_callback(secret: str, pool: Callable[[], asyncpg.Pool]) -> Callable[[Request], Awaitable[Response]]:
    """Verifies the signature over the raw body, refuses repeats by provider event id, and queues the callback."""

    async def endpoint(request: Request) -> Response:
        if request.method != "POST":
            return JSONResponse({"error": "method_not_allowed"}, status_code=405)
        body = await request.body()
        if not secret or not verify_signature(secret, body, request.headers.get(SIGNATURE_HEADER, ""), now=int(time.time())):
            return JSONResponse({"error": "invalid_signature"}, status_code=401)
        try:
            raw = json.loads(body)
            reference = str(raw["reference"])
            provider_event_id = str(raw["event_id"])
        except (ValueError, KeyError, TypeError) as error:
            return JSONResponse({"error": "invalid_callback", "reason": f"missing or unreadable field {error}"[:300]}, status_code=400)
        async with pool().acquire() as conn, conn.transaction():
            payment = await store.payment_by_reference(conn, reference)
            if payment is None:
                return JSONResponse({"error": "unknown_reference"}, status_code=404)
            try:
                report = ProviderPaymentReported(
                    event_id=uuid5(NAMESPACE_URL, f"payment-callback:{provider_event_id}"),
                    order_id=payment["order_id"],
                    provider_event_id=provider_event_id,
                    reference=reference,
                    amount=raw["amount"],
                    currency=raw["currency"],
                    paid_at=raw["paid_at"],
                )
            except (KeyError, ValidationError) as error:
                return JSONResponse({"error": "invalid_callback", "reason": str(error)[:300]}, status_code=400)
            if not await store.claim_callback(conn, provider_event_id):
                return JSONResponse({"error": "replayed_event", "event_id": provider_event_id}, status_code=409)
            await write_outbox(conn, [OutgoingMessage.of(topics.PAYMENTS_CALLBACKS, report)])
        return JSONResponse({"status": "accepted"}, status_code=202)

    return endpoint
