"""The Shopify webhook ingress: verify, drop repeats, map `orders/create` to ShopOrderSubmitted, publish to intake."""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ordermesh_contracts import ShopOrderSubmitted
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..domain.shopify import ShopifyMappingError, map_order, signature_is_valid


@dataclass(frozen=True)
class ShopifyShop:
    """A Shopify store connected to ordermesh: its ordermesh shop id and its webhook secret."""

    shop_id: str
    secret: str


def parse_shops(config: str) -> dict[str, ShopifyShop]:
    """Reads `{"<shop>.myshopify.com": {"shop_id": "...", "secret": "..."}, ...}`."""
    raw = json.loads(config or "{}")
    return {domain: ShopifyShop(entry["shop_id"], entry["secret"]) for domain, entry in raw.items()}


def shopify_orders_webhook(
    shops: dict[str, ShopifyShop],
    publish: Callable[[ShopOrderSubmitted], Awaitable[None]],
    seen: Callable[[str], Awaitable[bool]],
    remember: Callable[[str, str], Awaitable[None]],
) -> Callable[[Request], Awaitable[Response]]:
    """POST /webhooks/shopify/orders-create: 401 for an unknown shop or a bad signature, 200 for a repeat,
    422 with every reason for a body that is not an order, 200 once the order is on the intake topic (what the mapping
    could not express exactly travels with it as checks for staff)."""

    async def endpoint(request: Request) -> Response:
        if request.method != "POST":
            return JSONResponse({"error": "method_not_allowed"}, status_code=405)
        body = await request.body()
        domain = request.headers.get("X-Shopify-Shop-Domain", "")
        shop = shops.get(domain)
        if shop is None or not signature_is_valid(shop.secret, body, request.headers.get("X-Shopify-Hmac-Sha256", "")):
            return JSONResponse({"error": "invalid_signature"}, status_code=401)
        webhook_id = request.headers.get("X-Shopify-Webhook-Id", "")
        if not webhook_id:
            return JSONResponse({"error": "missing X-Shopify-Webhook-Id"}, status_code=400)
        if await seen(webhook_id):
            return JSONResponse({"status": "duplicate"})
        try:
            order = map_order(shop.shop_id, json.loads(body))
        except json.JSONDecodeError as error:
            return JSONResponse({"error": "invalid_json", "reasons": [error.msg]}, status_code=400)
        except ShopifyMappingError as error:
            return JSONResponse({"error": "not_an_order", "reasons": error.reasons}, status_code=422)
        await publish(order)
        await remember(webhook_id, domain)
        return JSONResponse(
            {"status": "accepted", "external_order_no": order.external_order_no, "checks_for_staff": order.checks_for_staff}
        )

    return endpoint
