"""The warehouse port and the adapter for the local sandbox warehouse's HTTP API."""

from dataclasses import dataclass
from typing import Protocol

from ordermesh_servicekit.consuming import TransientError

from ordermesh_servicekit.json_http import JsonHttp


@dataclass(frozen=True)
class ShipmentRequest:
    """What the warehouse needs to pick, pack and ship one delivery group.

    `report_shipped` false: the warehouse packs, but labels (and so tracking numbers) come from a carrier
    CSV round trip (B2 Cloud), not from the warehouse. `cash_on_delivery` is the amount to collect.
    """

    idempotency_key: str
    shipment_id: str
    order_id: str
    carrier: str
    lines: list[dict[str, int | str]]
    report_shipped: bool = True
    cash_on_delivery: int | None = None


CSV_LABEL_CARRIERS = frozenset({"yamato_b2"})
"""Carriers whose labels and tracking numbers come from a carrier CSV round trip, not from the warehouse."""


class WarehouseRejected(Exception):
    """The warehouse refused the request (4xx): retrying the same request can't help."""


class Warehouse(Protocol):
    """A warehouse that takes shipment requests and reports shipments back through a callback."""

    async def request_shipment(self, request: ShipmentRequest) -> str:
        """Hands over a shipment request; returns the warehouse's request id.

        Raises `TransientError` (no answer, timeouts included, or a 5xx) for failures worth retrying,
        `WarehouseRejected` for a refusal.
        """
        ...

    async def cancel_shipment(self, request_id: str) -> None:
        """Cancels a shipment request that has not shipped; a request the warehouse does not know is nothing to cancel.

        Raises `WarehouseRejected` when the warehouse refuses (e.g. 409: it already shipped), `TransientError`
        for failures worth retrying.
        """
        ...


class SandboxWarehouse:
    """The local sandbox warehouse over HTTP; it calls `callback_url` once a shipment leaves."""

    def __init__(self, client: JsonHttp, callback_url: str) -> None:
        self._client = client
        self._callback_url = callback_url

    async def request_shipment(self, request: ShipmentRequest) -> str:
        body = {
            "idempotency_key": request.idempotency_key,
            "shipment_id": request.shipment_id,
            "order_id": request.order_id,
            "carrier": request.carrier,
            "callback_url": self._callback_url,
            "lines": request.lines,
        }
        if not request.report_shipped:
            body["report_shipped"] = False
        if request.cash_on_delivery is not None:
            body["cash_on_delivery"] = request.cash_on_delivery
        response = await self._client.request("POST", "/v1/shipments", body, operation="POST /v1/shipments")
        if response.status_code >= 500:
            raise TransientError(f"warehouse answered {response.status_code}")
        if response.status_code >= 400:
            raise WarehouseRejected(f"warehouse refused the request: {response.status_code} {response.text[:300]}")
        return response.json()["request_id"]

    async def cancel_shipment(self, request_id: str) -> None:
        response = await self._client.request(
            "POST", f"/v1/shipments/{request_id}/cancel", operation="POST /v1/shipments/:id/cancel"
        )
        if response.status_code >= 500:
            raise TransientError(f"warehouse answered {response.status_code}")
        if response.status_code == 404:
            return
        if response.status_code >= 400:
            raise WarehouseRejected(f"warehouse answered {response.status_code}: {response.text[:300]}")
