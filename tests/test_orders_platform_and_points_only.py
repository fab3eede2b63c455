"""End to end on the real broker: orders no gateway takes part in still settle and complete. A Shopify order paid with
Shopify Payments is recorded as captured on the platform at acceptance (no card authorization, nothing at the
gateway) and completes with its points confirmed; a points-only order is settled for nothing once it has shipped in
full, so its points are confirmed, the points it used committed, and it completes."""

import json
import uuid

import httpx

from ordermesh_contracts import GrantPoints, OrderLine, Payment, PaymentMethod, order_id_for, topics
from ordermesh_devstack.demo import DEMO_SHOP, demo_order
from ordermesh_ops.client import Connection, send_command
from support import SHOPIFY_FIXTURE, eventually, fetch, publish_raw, shopify_headers

FIXTURE = SHOPIFY_FIXTURE


def sku(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


async def place(stack, order) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def order_state(stack, order_id) -> dict:
    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage, total, payment_method, flags FROM orders WHERE order_id = $1", order_id)
    return {"stage": row["stage"], "total": row["total"], "payment_method": row["payment_method"], **json.loads(row["flags"])}


async def payment_ledger(stack, order_id) -> list[tuple]:
    rows = await fetch(
        stack.service_dsns["payments"],
        "SELECT operation, status, amount, reference FROM gateway_calls WHERE order_id = $1 ORDER BY requested_at",
        order_id,
    )
    return [tuple(row) for row in rows]


async def at_the_gateway(stack, order_id) -> list[dict]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(
            f"http://127.0.0.1:{stack.processes['gateway'].http_port}/v1/authorizations", params={"order_id": str(order_id)}
        )
    return response.json()["authorizations"]


async def points_by_kind(stack, order_id) -> dict[str, int]:
    rows = await fetch(stack.service_dsns["points"], "SELECT kind, sum(points) AS points FROM ledger WHERE order_id = $1 GROUP BY kind", order_id)
    return {row["kind"]: row["points"] for row in rows}


def shopify_order(shopify_id: int, code: str) -> bytes:
    order = json.loads(FIXTURE.read_text())
    order["id"] = shopify_id
    order["payment_gateway_names"] = ["shopify_payments"]
    for item in order["line_items"]:
        item["sku"] = code
    return json.dumps(order, ensure_ascii=False).encode()


async def test_a_shopify_order_paid_with_shopify_payments_completes_with_points_confirmed_and_nothing_at_the_gateway(stack, recorder):
    code = sku("SHOPIFY")
    await stack.set_stock({code: 10})
    shopify_id = 9_007_199_254_000_000 + uuid.uuid4().int % 700_000
    body = shopify_order(shopify_id, code)
    url = f"http://127.0.0.1:{stack.processes['orders'].http_port}/webhooks/shopify/orders-create"
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(url, content=body, headers=shopify_headers(stack.shopify_secret, body, f"wh-{shopify_id}"))
    assert response.status_code == 200, response.text
    order_id = order_id_for("demo-shop", "shopify", str(shopify_id))
    reference = f"platform:shopify:{shopify_id}"

    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)
    state = await order_state(stack, order_id)
    assert (state["stage"], state["payment_method"], state["total"]) == ("completed", "platform", 7910)
    assert (state["card_authorization"], state["capture"], state["points"]) == ("not_applicable", "done", "confirmed")

    [captured] = recorder.on(topics.PAYMENTS_EVENTS, type="PaymentCaptured", order_id=order_id)
    assert (captured.json()["amount"], captured.json()["capture_id"]) == (7910, reference)
    assert recorder.on(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id) == []
    assert await payment_ledger(stack, order_id) == [("capture", "succeeded", 7910, reference)]
    assert await at_the_gateway(stack, order_id) == []
    [paid] = await fetch(stack.service_dsns["orders"], "SELECT paid_captured FROM orders WHERE order_id = $1", order_id)
    assert paid["paid_captured"] == 7910

    [accrued] = recorder.on(topics.POINTS_EVENTS, type="PointsAccrued", order_id=order_id)
    [confirmed] = recorder.on(topics.POINTS_EVENTS, type="PointsConfirmed", order_id=order_id)
    assert confirmed.json()["points"] == accrued.json()["points"] > 0
    points = await points_by_kind(stack, order_id)
    assert points["confirmed"] == points["accrued"] == accrued.json()["points"]


async def test_a_points_only_order_is_settled_for_nothing_once_shipped_and_completes_with_its_points_confirmed_and_committed(
    stack, recorder
):
    code = sku("PTS")
    await stack.set_stock({code: 5})
    base = demo_order(994_001)
    customer = base.customer.model_copy(update={"customer_id": f"PO-{uuid.uuid4().hex[:8]}"})
    earlier = demo_order(994_002).model_copy(update={"customer": customer})
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsAccrued", order_id=await place(stack, earlier), timeout=60)
    grant = GrantPoints(shop_id=DEMO_SHOP, issued_by="staff:e2e", customer_id=customer.customer_id, points=10_000, reason="e2e")
    reply = await send_command(Connection(stack.bootstrap, {}, stack.api_token), topics.POINTS_COMMANDS, grant)
    assert reply["type"] == "CommandAccepted", reply

    lines = [OrderLine(sku=code, name="商品 ポイント", unit_price=1000, quantity=3, tax_rate_percent=10)]
    spent = 3000 + 550
    order = base.model_copy(update={
        "customer": customer,
        "deliveries": [base.deliveries[0].model_copy(update={"lines": lines})],
        "charges": base.charges.model_copy(update={"shipping_fee": 550, "points_used": spent, "total": 0}),
        "payment": Payment(method=PaymentMethod.POINTS_ONLY),
    })
    order_id = await place(stack, order)

    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)
    state = await order_state(stack, order_id)
    assert (state["stage"], state["payment_method"], state["total"]) == ("completed", "points_only", 0)
    assert (state["capture"], state["points"], state["points_redemption"]) == ("done", "confirmed", "reserved")

    [shipped] = recorder.on(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id, all_shipped=True)
    [settled] = recorder.on(topics.PAYMENTS_EVENTS, type="PaymentCaptured", order_id=order_id)
    assert (settled.json()["amount"], settled.json()["capture_id"]) == (0, "nothing-to-pay")
    assert settled.json()["causation_id"] == shipped.json()["event_id"]
    assert await payment_ledger(stack, order_id) == [("capture", "succeeded", 0, "nothing-to-pay")]
    assert await at_the_gateway(stack, order_id) == []

    [accrued] = recorder.on(topics.POINTS_EVENTS, type="PointsAccrued", order_id=order_id)
    assert accrued.json()["points"] == 3000 * 1 // 100  # the demo shop's 1 % on the merchandise

    async def committed():
        points = await points_by_kind(stack, order_id)
        return points if points.get("committed") else None

    points = await eventually(committed, timeout=30)
    assert (points["reserved"], points["committed"], points["confirmed"]) == (spent, spent, accrued.json()["points"])
