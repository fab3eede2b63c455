"""The Shopify webhook ingress: verify, drop repeats, map `orders/create` to ShopOrderSubmitted, publish to intake."""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ordermesh_contracts import ShopOrderSubmitted
from ordermesh_servicekit.http_input import HttpRefusal, header_text, parse_json
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
    """POST /webhooks/shopify/orders-create: 401 for an unknown shop or a bad signature, 200 for a repeat, 400 for a
    body that is not safe JSON (servicekit.http_input), 422 with every reason for a body that is not an order, 200 once
    the order is on the intake topic (what the mapping could not express exactly travels with it as checks for staff)."""

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        domain = header_text(request, "X-Shopify-Shop-Domain")
        shop = shops.get(domain)
        if shop is None or not signature_is_valid(shop.secret, body, header_text(request, "X-Shopify-Hmac-Sha256")):
            raise HttpRefusal(401, "invalid_signature", "unknown shop domain, or X-Shopify-Hmac-Sha256 does not match the body")
        webhook_id = header_text(request, "X-Shopify-Webhook-Id", max_length=128)
        if not webhook_id:
            raise HttpRefusal(400, "invalid_header", "X-Shopify-Webhook-Id is required")
        if await seen(webhook_id):
            return JSONResponse({"status": "duplicate"})
        raw = parse_json(body)
        try:
            order = map_order(shop.shop_id, raw)
        except ShopifyMappingError as error:
            raise HttpRefusal(422, "not_an_order", "; ".join(error.reasons)[:1000], reasons=error.reasons) from None
        await publish(order)
        await remember(webhook_id, domain)
        return JSONResponse(
            {"status": "accepted", "external_order_no": order.external_order_no, "checks_for_staff": order.checks_for_staff}
        )

    return endpoint
