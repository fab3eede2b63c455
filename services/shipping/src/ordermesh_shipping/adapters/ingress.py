"""HTTP ingress of the shipping service: signed warehouse callbacks onto the callback topic (once each), and stock levels."""

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ordermesh_contracts import WarehouseDeliveryReported, WarehouseShipmentReported, topics
from ordermesh_contracts.shipping import MAX_UNITS
from ordermesh_servicekit.http_input import HttpRefusal, header_text, invalid_fields, parse_json_array, parse_json_object
from ordermesh_servicekit.outbox import OutgoingMessage
from ordermesh_servicekit.signing import verify_signature
from ordermesh_servicekit.tracing import ingress_span

from .. import store_shipments

SIGNATURE_HEADER = "X-Ordermesh-Signature"


def warehouse_report(raw: dict[str, Any]) -> WarehouseShipmentReported | WarehouseDeliveryReported:
    """The warehouse's JSON (type "shipped" or "delivered") as the callback contract; 422 with reasons otherwise."""
    renamed = {("warehouse_request_id" if k == "request_id" else k): v for k, v in raw.items()}
    try:
        if raw.get("type") == "delivered":
            fields = ("event_id", "shipment_id", "order_id", "warehouse_request_id", "delivered_at", "cash_collected")
            return WarehouseDeliveryReported(**{k: renamed[k] for k in fields if k in renamed})
        fields = ("event_id", "shipment_id", "order_id", "warehouse_request_id", "carrier", "tracking_number", "shipped_at", "lines")
        return WarehouseShipmentReported(**{k: renamed[k] for k in fields if k in renamed})
    except ValidationError as error:
        raise invalid_fields(error, "invalid_report") from None


class ShipmentOrigins:
    """The correlation id and trace context each shipment was requested under, by (shipment id, order id): told when
    this process requests the shipment (`remember`) or read once, and kept, as they never change once recorded and a
    shipment is never deleted, so a shipment's callbacks read nothing once it is known here (a shipment another
    replica requested is read by its first callback). At most `kept` shipments; the one used longest ago goes first."""

    def __init__(self, kept: int = 10_000) -> None:
        self._kept = kept
        self._known: OrderedDict[tuple[UUID, UUID], tuple[UUID | None, str | None]] = OrderedDict()

    async def of(self, conn: asyncpg.Connection, shipment_id: UUID, order_id: UUID) -> tuple[UUID | None, str | None] | None:
        """(correlation id, traceparent) of the shipment; None if no shipment with this id belongs to the order."""
        key = (shipment_id, order_id)
        if key in self._known:
            self._known.move_to_end(key)
            return self._known[key]
        row = await store_shipments.shipment_origin(conn, shipment_id, order_id)
        if row is None:
            return None
        origin = (row["correlation_id"], row["traceparent"])
        self.remember(shipment_id, order_id, origin)
        return origin

    def remember(self, shipment_id: UUID, order_id: UUID, origin: tuple[UUID | None, str | None]) -> None:
        """Keeps what the order's shipment was requested under (correlation id, traceparent), as recorded."""
        self._known[(shipment_id, order_id)] = origin
        self._known.move_to_end((shipment_id, order_id))
        if len(self._known) > self._kept:
            self._known.popitem(last=False)


def warehouse_callback(
    secret: str, pool: Callable[[], asyncpg.Pool], origins: ShipmentOrigins | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """POST /callbacks/warehouse: verifies a warehouse report's (shipped or delivered) signature, refuses a report out
    of contract (422), for a shipment ordermesh never requested (404) or with an event id accepted before (409), and
    queues the report for `shipping.callbacks.v1` in the statement that records its receipt before answering 202. The
    report carries the correlation id and continues the trace the shipment was requested under (read first, in a
    statement of its own, once per shipment unless `origins` was told it when the shipment was requested: see
    `ShipmentOrigins`)."""
    origins = origins if origins is not None else ShipmentOrigins()

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        if not secret or not verify_signature(secret, body, header_text(request, SIGNATURE_HEADER, max_length=1024), now=int(time.time())):
            raise HttpRefusal(401, "invalid_signature", f"{SIGNATURE_HEADER} is missing, stale or does not match the body")
        report = warehouse_report(parse_json_object(body))
        async with pool().acquire() as conn:
            origin = await origins.of(conn, report.shipment_id, report.order_id)
            if origin is None:
                raise HttpRefusal(404, "unknown_shipment", "no shipment with this shipment_id belongs to this order_id")
            correlation_id, traceparent = origin
            if correlation_id is not None:
                report = report.model_copy(update={"correlation_id": correlation_id})
            with ingress_span("POST /callbacks/warehouse", traceparent, {
                "ordermesh.order_id": str(report.order_id), "ordermesh.callback": report.type,
            }):
                claimed = await store_shipments.claim_warehouse_callback(
                    conn, report.event_id, OutgoingMessage.of(topics.SHIPPING_CALLBACKS, report)
                )
        if not claimed:
            raise HttpRefusal(409, "replayed_event", "this callback was accepted before", event_id=str(report.event_id))
        return JSONResponse({"status": "accepted"}, status_code=202)

    return endpoint


class StockLevelSet(BaseModel):
    """One line of PUT /admin/stock."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str = Field(min_length=1, max_length=64, description="Stock-keeping unit.")
    warehouse: str = Field(default="main", min_length=1, max_length=64, description="Warehouse holding it.")
    on_hand: int = Field(strict=True, ge=0, le=MAX_UNITS, description="Units on hand.")


_STOCK_LEVELS = TypeAdapter(list[StockLevelSet])


def stock_levels(set_stock: Callable[[list[tuple[str, str, int]]], Awaitable[None]]) -> Callable[[Request], Awaitable[Response]]:
    """PUT a JSON list of {sku, warehouse, on_hand} to set stock levels (behind the admin token)."""

    async def endpoint(request: Request) -> Response:
        items = parse_json_array(await request.body())
        try:
            levels = _STOCK_LEVELS.validate_python(items)
        except ValidationError as error:
            raise invalid_fields(error, "invalid_stock") from None
        await set_stock([(level.sku, level.warehouse, level.on_hand) for level in levels])
        return JSONResponse({"updated": len(levels)})

    return endpoint
