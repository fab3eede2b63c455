"""HTTP ingress of the shipping service: signed warehouse callbacks onto the callback topic, and stock levels."""

import hmac
import json
import time
from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ordermesh_contracts import WarehouseDeliveryReported, WarehouseShipmentReported, topics
from ordermesh_servicekit.outbox import OutgoingMessage
from ordermesh_servicekit.signing import verify_signature

SIGNATURE_HEADER = "X-Ordermesh-Signature"


def warehouse_callback(
    secret: str, publish: Callable[[OutgoingMessage], Awaitable[None]]
) -> Callable[[Request], Awaitable[Response]]:
    """Verifies a warehouse report's (shipped or delivered) signature, then publishes it to `shipping.callbacks.v1` before answering 202."""

    async def endpoint(request: Request) -> Response:
        if request.method != "POST":
            return JSONResponse({"error": "method_not_allowed"}, status_code=405)
        body = await request.body()
        header = request.headers.get(SIGNATURE_HEADER, "")
        if not verify_signature(secret, body, header, now=int(time.time())):
            return JSONResponse({"error": "invalid_signature"}, status_code=401)
        try:
            raw = json.loads(body)
            report: WarehouseShipmentReported | WarehouseDeliveryReported
            if raw.get("type") == "delivered":
                report = WarehouseDeliveryReported(
                    event_id=raw["event_id"],
                    shipment_id=raw["shipment_id"],
                    order_id=raw["order_id"],
                    warehouse_request_id=raw["request_id"],
                    delivered_at=raw["delivered_at"],
                    cash_collected=raw.get("cash_collected"),
                )
            else:
                report = WarehouseShipmentReported(
                    event_id=raw["event_id"],
                    shipment_id=raw["shipment_id"],
                    order_id=raw["order_id"],
                    warehouse_request_id=raw["request_id"],
                    carrier=raw["carrier"],
                    tracking_number=raw["tracking_number"],
                    shipped_at=raw["shipped_at"],
                    lines=raw["lines"],
                )
        except (ValueError, KeyError, TypeError, ValidationError) as error:
            return JSONResponse({"error": "invalid_report", "reason": str(error)[:500]}, status_code=400)
        await publish(OutgoingMessage.of(topics.SHIPPING_CALLBACKS, report))
        return JSONResponse({"status": "accepted"}, status_code=202)

    return endpoint


def stock_levels(
    admin_token: str, set_stock: Callable[[list[tuple[str, str, int]]], Awaitable[None]]
) -> Callable[[Request], Awaitable[Response]]:
    """PUT a JSON list of {sku, warehouse, on_hand} to set stock levels (bearer token required)."""

    async def endpoint(request: Request) -> Response:
        if request.method != "PUT":
            return JSONResponse({"error": "method_not_allowed"}, status_code=405)
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not admin_token or not hmac.compare_digest(supplied.encode(), admin_token.encode()):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            levels = [
                (str(item["sku"]), str(item.get("warehouse", "main")), int(item["on_hand"]))
                for item in json.loads(await request.body())
            ]
        except (ValueError, KeyError, TypeError) as error:
            return JSONResponse({"error": "invalid_stock", "reason": str(error)[:200]}, status_code=400)
        if any(units < 0 for _, _, units in levels):
            return JSONResponse({"error": "invalid_stock", "reason": "on_hand must not be negative"}, status_code=400)
        await set_stock(levels)
        return JSONResponse({"updated": len(levels)})

    return endpoint
