"""HTTP ingress of the payments service: signed provider callbacks onto `payments.callbacks.v1`, once per provider event."""

import time
from collections.abc import Awaitable, Callable
from uuid import NAMESPACE_URL, uuid5

import asyncpg
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ordermesh_contracts import MinorUnits, ProviderPaymentReported, topics
from ordermesh_contracts.money import CurrencyCode
from ordermesh_servicekit.http_input import HttpRefusal, header_text, invalid_fields, parse_json_object
from ordermesh_servicekit.outbox import OutgoingMessage, write_outbox
from ordermesh_servicekit.signing import verify_signature
from ordermesh_servicekit.tracing import ingress_span

from .. import store

SIGNATURE_HEADER = "X-Ordermesh-Signature"


class ProviderCallback(BaseModel):
    """What a provider posts when money arrives for a payment reference (other fields it adds are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str = Field(min_length=1, max_length=128, description="The provider's id of the callback.")
    reference: str = Field(min_length=1, max_length=64, description="Payment reference the customer quoted.")
    amount: MinorUnits = Field(gt=0, description="Amount received.")
    currency: CurrencyCode
    paid_at: AwareDatetime = Field(description="When the provider received the money.")


def payment_callback(secret: str, pool: Callable[[], asyncpg.Pool]) -> Callable[[Request], Awaitable[Response]]:
    """POST /callbacks/payments: verifies the signature over the raw body, refuses repeats by provider event id (409),
    an unknown reference (404) or fields out of contract (422), and queues the callback with the payment's correlation
    id, continuing the trace the payment was created under."""

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        if not secret or not verify_signature(secret, body, header_text(request, SIGNATURE_HEADER, max_length=1024), now=int(time.time())):
            raise HttpRefusal(401, "invalid_signature", f"{SIGNATURE_HEADER} is missing, stale or does not match the body")
        try:
            callback = ProviderCallback.model_validate(parse_json_object(body))
        except ValidationError as error:
            raise invalid_fields(error, "invalid_callback") from None
        async with pool().acquire() as conn, conn.transaction():
            payment = await store.payment_by_reference(conn, callback.reference)
            if payment is None:
                raise HttpRefusal(404, "unknown_reference", "no payment has this reference")
            report = ProviderPaymentReported(
                event_id=uuid5(NAMESPACE_URL, f"payment-callback:{callback.event_id}"),
                order_id=payment["order_id"],
                provider_event_id=callback.event_id,
                reference=callback.reference,
                amount=callback.amount,
                currency=callback.currency,
                paid_at=callback.paid_at,
                **({"correlation_id": payment["correlation_id"]} if payment["correlation_id"] else {}),
            )
            if not await store.claim_callback(conn, callback.event_id):
                raise HttpRefusal(409, "replayed_event", "this callback was accepted before", event_id=callback.event_id)
            with ingress_span("POST /callbacks/payments", payment["traceparent"], {
                "ordermesh.order_id": str(payment["order_id"]), "ordermesh.callback": report.type,
            }):
                await write_outbox(conn, [OutgoingMessage.of(topics.PAYMENTS_CALLBACKS, report)])
        return JSONResponse({"status": "accepted"}, status_code=202)

    return endpoint
