"""The Shopify webhook ingress end to end: signed orders/create → intake → accepted; forgeries and repeats change nothing."""

import json
from pathlib import Path

import httpx
import pytest

from ordermesh_contracts import order_id_for, topics
from support import fetch, shopify_headers, shopify_order_body

SAMPLES = Path(__file__).resolve().parent / "data" / "shopify"


async def test_a_signed_shopify_order_is_published_once_and_accepted_even_when_shopify_retries(stack, recorder):
    url = f"http://127.0.0.1:{stack.processes['orders'].http_port}/webhooks/shopify/orders-create"
    shopify_id = 9_007_199_254_740_993  # 2^53 + 1: would lose its last digit as a float
    body = shopify_order_body(shopify_id)
    async with httpx.AsyncClient(timeout=10) as client:
        first = await client.post(url, content=body, headers=shopify_headers(stack.shopify_secret, body, "wh-1"))
        again = await client.post(url, content=body, headers=shopify_headers(stack.shopify_secret, body, "wh-1"))
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


async def test_a_forged_webhook_or_a_body_that_is_not_an_order_is_refused_and_publishes_nothing(stack, recorder):
    url = f"http://127.0.0.1:{stack.processes['orders'].http_port}/webhooks/shopify/orders-create"
    body = shopify_order_body(1234567890123456789)
    async with httpx.AsyncClient(timeout=10) as client:
        forged = await client.post(url, content=body, headers=shopify_headers("not-the-secret", body, "wh-forged"))
        unknown_shop = await client.post(url, content=body, headers={**shopify_headers(stack.shopify_secret, body, "wh-x"), "X-Shopify-Shop-Domain": "evil.myshopify.com"})
        broken = json.loads(body)
        del broken["line_items"]
        broken_body = json.dumps(broken).encode()
        not_an_order = await client.post(url, content=broken_body, headers=shopify_headers(stack.shopify_secret, broken_body, "wh-broken"))
    assert forged.status_code == 401 and unknown_shop.status_code == 401
    assert not_an_order.status_code == 422 and not_an_order.json()["error"] == "not_an_order"
    assert any("line_items" in r for r in not_an_order.json()["reasons"])
    published = [m for m in recorder.on(topics.SHOP_ORDERS) if m.json().get("external_order_no") == "1234567890123456789"]
    assert published == []


@pytest.mark.parametrize(
    ("sample", "shopify_id", "total"),
    [("orders_create_sample.json", 820982911946154501, 8999), ("orders_create_sample_2019.json", 820982911946154502, 40300)],
)
async def test_shopifys_published_samples_are_taken_in_held_for_staff_with_what_to_check(stack, recorder, sample, shopify_id, total):
    order = json.loads((SAMPLES / sample).read_text())
    order["id"] = shopify_id  # the two samples share one id; each run takes its own order in
    body = json.dumps(order).encode()
    url = f"http://127.0.0.1:{stack.processes['orders'].http_port}/webhooks/shopify/orders-create"
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(url, content=body, headers=shopify_headers(stack.shopify_secret, body, f"wh-sample-{shopify_id}"))
    assert answer.status_code == 200, answer.text
    assert any("unknown" in check for check in answer.json()["checks_for_staff"])

    order_id = order_id_for("demo-shop", "shopify", str(shopify_id))
    await recorder.wait_for(topics.SHOP_UPDATES, type="ShopOrderAccepted", order_id=order_id, timeout=60)
    [row] = await fetch(
        stack.service_dsns["orders"], "SELECT stage, currency, total, payment_method FROM orders WHERE order_id = $1", order_id
    )
    assert (row["stage"], row["currency"], row["total"], row["payment_method"]) == ("review", "USD", total, "platform")
    [task] = await fetch(
        stack.service_dsns["orders"],
        "SELECT note, blocking, status FROM order_tasks WHERE order_id = $1 AND kind = 'intake_check'",
        order_id,
    )
    assert task["blocking"] and task["status"] == "open"
    assert "visa, bogus is unknown" in task["note"] and "cancelled at" in task["note"]


async def test_a_tax_exclusive_yen_order_paid_on_shopify_flows_on_with_its_tax_added(stack, recorder):
    order = json.loads(shopify_order_body(9_007_199_254_740_995))
    order.update(taxes_included=False, financial_status="paid")
    matcha, cookie = order["line_items"]
    matcha["price"], matcha["tax_lines"] = "2710", [{"price": "502", "rate": 0.1, "title": "消費税"}]
    cookie["price"], cookie["tax_lines"] = "1667", [{"price": "133", "rate": 0.08, "title": "消費税（軽減税率）"}]
    order["shipping_lines"][0].update(discounted_price="500", tax_lines=[{"price": "50", "rate": 0.1}])
    order["total_price"] = "7872"
    body = json.dumps(order, ensure_ascii=False).encode()
    url = f"http://127.0.0.1:{stack.processes['orders'].http_port}/webhooks/shopify/orders-create"
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(url, content=body, headers=shopify_headers(stack.shopify_secret, body, "wh-tax-exclusive"))
    assert answer.status_code == 200 and answer.json()["checks_for_staff"] == []
    order_id = order_id_for("demo-shop", "shopify", "9007199254740995")
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderProgressed", order_id=order_id, from_stage="review", timeout=90)
    [row] = await fetch(stack.service_dsns["orders"], "SELECT total, payment_method FROM orders WHERE order_id = $1", order_id)
    assert (row["total"], row["payment_method"]) == (7872, "platform")
