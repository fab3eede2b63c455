"""The console's operations pages in a real browser: stuck orders with what each waits for and the dead letters that
name them (on the stuck page and the order list), the order's own dead letters and billing address on its page, consumer lag per service group — each checked
against what the services themselves answer."""

import json
import uuid

from ordermesh_contracts import Address, topics
from ordermesh_ops.lag import consumer_lag
from ordermesh_ops.client import Connection
from support import eventually, publish_raw

RUN = uuid.uuid4().hex[:6]
SERVICE_GROUPS = {f"ordermesh-{s}" for s in ("orders", "payments", "shipping", "points", "notify")}


async def test_a_stuck_order_shows_what_it_waits_for_and_its_dead_letter_and_the_health_page_shows_every_group_s_lag(
    stack, console, screenshots
):
    shop = f"console-ops-{RUN}"
    billing = Address(name="請求 花子", postal_code="530-0001", prefecture="大阪府", city="大阪市北区", line1="梅田1-1")
    order, order_id = await console.submit(962_001, shop_id=shop, billing_address=billing)
    await console.wait_stage(order_id, "awaiting_payment")
    poison = {"type": "NoSuchReport", "order_id": str(order_id), "note": f"console test {RUN}"}
    await publish_raw(stack.bootstrap, topics.SHIPPING_CALLBACKS, json.dumps(poison).encode(), key=str(order_id).encode())
    page = await console.logged_in()

    row = f"[data-testid=stuck] tr[data-order='{order_id}']"

    async def listed_with_its_dead_letter() -> bool:
        await page.goto(f"{stack.console_url}/operations/stuck?older_than=0s&shop_id={shop}")
        return await page.locator(f"{row} [data-testid=order-dead-letters]").count() == 1

    await eventually(listed_with_its_dead_letter, timeout=120, interval=2)
    assert (await page.text_content(f"{row} [data-testid=order-dead-letters]")).strip() == "1"
    shown_waits = await page.locator(f"{row} ul.waits li").evaluate_all("items => items.map(i => i.dataset.flag)")
    answer = await console.staff_get("orders", "/api/orders/stuck", older_than_seconds=0, shop_id=shop)
    [served] = [o for o in answer["orders"] if o["order_id"] == str(order_id)]
    assert shown_waits == [w["flag"] for w in served["waiting_for"]] and shown_waits
    assert served["stage"] == "awaiting_payment"
    await page.screenshot(path=screenshots / "stuck-orders.png", full_page=True)
    await page.goto(f"{stack.console_url}/orders?shop_id={shop}")
    assert (await page.text_content(f"tr[data-order='{order.external_order_no}'] [data-testid=order-dead-letters]")).strip() == "DLQ 1"
    await page.goto(f"{stack.console_url}/operations/stuck?older_than=0s&shop_id={shop}")

    await page.click(f"{row} a:text('{order.external_order_no}')")
    await page.wait_for_selector("[data-testid=order-no]")
    letters = await page.text_content("[data-testid=order-dead-letters]")
    assert topics.SHIPPING_CALLBACKS in letters
    shown_billing = await page.text_content("[data-testid=billing-address]")
    assert "大阪市北区" in shown_billing and "請求 花子" in shown_billing
    served_order = await console.staff_get("orders", "/api/orders/order", order_id=order_id)
    assert served_order["billing_address"]["city"] == "大阪市北区"
    await page.screenshot(path=screenshots / "order-with-dead-letter.png", full_page=True)

    await page.goto(f"{stack.console_url}/operations/stuck?older_than=1d&shop_id={shop}")
    assert await page.locator(row).count() == 0
    refused = await page.goto(f"{stack.console_url}/operations/stuck?older_than=soon")
    assert refused.status == 400 and "older_than" in await page.text_content("#error")

    await page.goto(f"{stack.console_url}/operations/health")
    shown = await page.locator("[data-testid=lag] tr[data-group]").evaluate_all(
        "rows => rows.map(r => [r.dataset.group, r.dataset.topic, Number(r.dataset.lag)])"
    )
    assert SERVICE_GROUPS <= {group for group, _, _ in shown}
    connection = Connection(stack.bootstrap, {}, stack.api_token)
    measured = {(row.group, row.topic) for row in await consumer_lag(connection)}
    assert {(group, topic) for group, topic, _ in shown} <= measured
    assert all(lag >= 0 for _, _, lag in shown)
    assert ("ordermesh-orders", topics.SHOP_ORDERS) in {(group, topic) for group, topic, _ in shown}
    await page.screenshot(path=screenshots / "health-and-lag.png", full_page=True)
