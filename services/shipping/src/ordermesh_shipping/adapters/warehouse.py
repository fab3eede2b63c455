"""The warehouse port and the adapter for the local sandbox warehouse's HTTP API."""

from dataclasses import dataclass
from typing import Protocol

import httpx

from ordermesh_servicekit.consuming import TransientError


@dataclass(frozen=True)
class ShipmentRequest:
    """What the warehouse needs to pick, pack and ship one delivery group."""

    idempotency_key: str
    shipment_id: str
    order_id: str
    carrier: str
    lines: list[dict[str, int | str]]


class Warehouse(Protocol):
    """A warehouse that takes shipment requests and reports shipments back through a callback."""

    async def request_shipment(self, request: ShipmentRequest) -> str:
        """Hands over a shipment request; returns the warehouse's request id."""
        ...


class SandboxWarehouse:
    """The local sandbox warehouse over HTTP; it calls `callback_url` once a shipment leaves."""

    def __init__(self, client: httpx.AsyncClient, callback_url: str) -> None:
        self._client = client
        self._callback_url = callback_url

    async def request_shipment(self, request: ShipmentRequest) -> str:
        response = await self._client.post(
            "/v1/shipments",
            json={
                "idempotency_key": request.idempotency_key,
                "shipment_id": request.shipment_id,
                "order_id": request.order_id,
                "carrier": request.carrier,
                "callback_url": self._callback_url,
                "lines": request.lines,
            },
        )
        if response.status_code >= 500:
            raise TransientError(f"warehouse answered {response.status_code}")
        response.raise_for_status()
        return response.json()["request_id"]
