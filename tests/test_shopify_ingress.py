"""The Shopify webhook ingress end to end: signed orders/create → intake → accepted; forgeries and repeats change nothing."""

import base64
import hashlib
import hmac
import json
from pathlib import Path

import httpx

from ordermesh_contracts import order_id_for, topics
from ordermesh_devstack.stack import SHOPIFY_DEMO_DOMAIN
from support import fetch

FIXTURE = Path(__file__).resolve().parent.parent / "services/orders/tests/data/shopify_orders_create.json"


def _shopify_order(order_id: int) -> bytes:
    order = json.loads(FIXTURE.read_text())
    order["id"] = order_id
    order["shipping_address"]["zip"] = "150-0001"
    for item in order["line_items"]:
        item["sku"] = "SKU-001"
    return json.dumps(order, ensure_ascii=False).encode()


def _headers(secret: str, body: bytes, webhook_id: str) -> dict[str, str]:
    return {
        "X-Shopify-Shop-Domain": SHOPIFY_DEMO_DOMAIN,
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Hmac-Sha256": base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode(),
        "Content-Type": "application/json",
    }


async def test_a_signed_shopify_order_is_published_once_and_accepted_even_when_shopify_retries(stack, recorder):
    url = f"http://127.0.0.1:{stack.processes['orders'].http_port}/webhooks/shopify/orders-create"
    shopify_id = 9_007_199_254_740_993  # 2^53 + 1: would lose its last digit as a float
    body = _shopify_order(shopify_id)
    async with httpx.AsyncClient(timeout=10) as client:
        first = await client.post(url, content=body, headers=_headers(stack.shopify_secret, body, "wh-1"))
        again = await client.post(url, content=body, headers=_headers(stack.shopify_secret, body, "wh-1"))
    assert first.status_code == 200 and first.json()["external_order_no"] == str(shopify_id)
    assert again.json() == {"status": "duplicate"}

    order_id = order_id_for("demo-shop", "shopify", str(shopify_id))
    await recorder.wait_for(topics.SHOP_UPDATES, type="ShopOrderAccepted", order_id=order_id, timeout=60)
    intake = [m for m in recorder.on(topics.SHOP_ORDERS) if m.json().get("external_order_no") == str(shopify_id)]
    assert len(intake) == 1
    [row] = await fetch(
        stack.service_dsns["orders"], "SELECT channel, total, payment_method, flags FROM orders WHERE order_id = $1", order_id
    )
    assert (row["channel"], row["total"], row["payment_method"]) == ("shopify", 7910, "platform")
    assert json.loads(row["flags"])["address"] == "ok"


async def test_a_forged_or_unmappable_shopify_webhook_is_refused_and_publishes_nothing(stack, recorder):
    url = f"http://127.0.0.1:{stack.processes['orders'].http_port}/webhooks/shopify/orders-create"
    body = _shopify_order(1234567890123456789)
    async with httpx.AsyncClient(timeout=10) as client:
        forged = await client.post(url, content=body, headers=_headers("not-the-secret", body, "wh-forged"))
        unknown_shop = await client.post(url, content=body, headers={**_headers(stack.shopify_secret, body, "wh-x"), "X-Shopify-Shop-Domain": "evil.myshopify.com"})
        broken = json.loads(body)
        broken["payment_gateway_names"] = ["mystery-pay"]
        broken_body = json.dumps(broken).encode()
        unmappable = await client.post(url, content=broken_body, headers=_headers(stack.shopify_secret, broken_body, "wh-broken"))
    assert forged.status_code == 401 and unknown_shop.status_code == 401
    assert unmappable.status_code == 422 and any("mystery-pay" in r for r in unmappable.json()["reasons"])
    published = [m for m in recorder.on(topics.SHOP_ORDERS) if m.json().get("external_order_no") == "1234567890123456789"]
    assert published == []
