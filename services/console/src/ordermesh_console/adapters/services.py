"""Reads from the services' staff JSON endpoints (bearer token), each answer or a clear reason it is missing."""

import asyncio
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx

SERVICES = ("orders", "payments", "shipping", "points", "notify")


class ServiceUnavailable(RuntimeError):
    """A service did not answer, or answered with an error; the message says which and why."""


class ServiceRefused(ServiceUnavailable):
    """A service answered 4xx: what the console passed on was bad input; the message has the service's reason."""


@dataclass
class ServiceReader:
    """An HTTP client for the five services' read endpoints."""

    urls: dict[str, str]
    token: str
    client: httpx.AsyncClient

    async def get(self, service: str, path: str, **params: Any) -> Any:
        """GET a staff endpoint; raises ServiceUnavailable with the reason when it fails."""
        base = self.urls.get(service)
        if not base:
            raise ServiceUnavailable(f"{service}: no address configured")
        try:
            response = await self._get(
                f"{base}{path}",
                params={k: str(v) for k, v in params.items() if v not in (None, "")},
                headers={"Authorization": f"Bearer {self.token}"},
            )
        except httpx.HTTPError as error:
            raise ServiceUnavailable(f"{service}: {type(error).__name__}") from error
        if response.status_code == 404:
            return None
        if 400 <= response.status_code < 500:
            raise ServiceRefused(f"{service}: {_reason(response)}")
        if response.status_code >= 400:
            raise ServiceUnavailable(f"{service} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    async def stuck_orders(self, older_than_seconds: int, shop_id: str | None, limit: int) -> list[dict[str, Any]]:
        """Unfinished orders without progress for that long, each with what it waits for (the CLI's `orders stuck`)."""
        answer = await self.get(
            "orders", "/api/orders/stuck", older_than_seconds=older_than_seconds, shop_id=shop_id, limit=limit
        )
        return answer["orders"]

    async def order_ids_by_number(self, external_order_no: str, shop_id: str) -> list[str]:
        """The ids of the shop's orders with this shop order number (one per channel)."""
        answer = await self.get("orders", "/api/orders/by-number", external_order_no=external_order_no, shop_id=shop_id)
        return [str(order["order_id"]) for order in (answer or {}).get("orders") or []]

    async def _get(self, url: str, **kwargs: Any) -> httpx.Response:
        # A pooled keep-alive connection the service has just closed fails once with a transport error; a GET is safe
        # to send again on a new connection.
        try:
            return await self.client.get(url, **kwargs)
        except httpx.TransportError:
            return await self.client.get(url, **kwargs)

    async def orders_page(self, filters: dict[str, Any], offset: int, limit: int) -> dict[str, Any]:
        """One page of the order list with its total."""
        return await self.get("orders", "/api/orders", **filters, offset=offset, limit=limit)

    async def order(self, order_id: UUID) -> dict[str, Any] | None:
        """One order with flags, contents, tasks and history (None if unknown)."""
        return await self.get("orders", "/api/orders/order", order_id=order_id)

    async def order_around(self, order_id: UUID) -> dict[str, Any]:
        """What the other services know of an order; each part is the answer or {'error': reason}."""
        parts = {
            "payments": self.get("payments", "/api/payments/order", order_id=order_id),
            "shipments": self.get("shipping", "/api/shipping/shipments", order_id=order_id),
            "allocations": self.get("shipping", "/api/shipping/allocations", order_id=order_id),
            "points": self.get("points", "/api/points/order", order_id=order_id),
            "mails": self.get("notify", "/api/notify/mails", order_id=order_id),
        }
        answers = await asyncio.gather(*parts.values(), return_exceptions=True)
        return {
            name: ({"error": str(answer)} if isinstance(answer, Exception) else answer)
            for name, answer in zip(parts, answers)
        }

    async def health(self) -> dict[str, dict[str, Any]]:
        """Each service's /readyz answer (or why there is none)."""

        async def ready(service: str) -> dict[str, Any]:
            try:
                response = await self._get(f"{self.urls[service]}/readyz", timeout=3)
                return {"ready": response.status_code == 200, **response.json()}
            except (httpx.HTTPError, ValueError, KeyError) as error:
                return {"ready": False, "error": type(error).__name__}

        answers = await asyncio.gather(*(ready(s) for s in SERVICES))
        return dict(zip(SERVICES, answers))


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("reason") or body.get("error") or body)[:300] if isinstance(body, dict) else str(body)[:300]
