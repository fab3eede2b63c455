"""The console in a real browser against the running suite: staff log in, find, hold, release, cancel and edit orders,
run a bulk status change on 50 orders, and a viewer is refused an edit — each effect checked on the page and in the
services' databases. Screenshots of the main pages go to `.artifacts/console/`."""

import asyncio
import json
import uuid

import httpx
from ordermesh_contracts import topics
from support import eventually, fetch, publish_raw

RUN = uuid.uuid4().hex[:6]


async def test_staff_log_in_find_an_order_by_its_shop_number_and_hold_and_release_it(stack, console, screenshots):
    order, order_id = await console.submit(960_001)
    await console.wait_stage(order_id, "awaiting_payment")
    page = await console.logged_in()
    await page.screenshot(path=screenshots / "orders.png", full_page=True)

    await page.fill("input[name=q]", order.external_order_no)
    await page.click("form.filters button[type=submit]")
    await page.wait_for_selector(f"tr[data-order='{order.external_order_no}']")
    assert (await page.text_content("[data-testid=total]")).startswith("1 ")
    await page.click(f"a:text('{order.external_order_no}')")
    await page.wait_for_selector("[data-testid=order-no]")
    assert await page.get_attribute("[data-testid=stage]", "data-stage") == "awaiting_payment"
    await page.screenshot(path=screenshots / "order-detail.png", full_page=True)

    await page.fill("form[action$='/hold'] input[name=reason]", "お客様に確認中")
    await page.click("button[data-action=hold]")
    await page.wait_for_selector("#reply[data-reply=accepted]")
    assert await page.get_attribute("[data-testid=stage]", "data-stage") == "on_hold"
    assert await console.stage(order_id) == "on_hold"
    await page.screenshot(path=screenshots / "order-held-reply.png", full_page=True)

    await page.click("button[data-action=release]")
    await page.wait_for_selector("#reply[data-reply=accepted]")
    assert await page.get_attribute("[data-testid=stage]", "data-stage") == "awaiting_payment"
    assert await console.stage(order_id) == "awaiting_payment"
    history = await console.history(order_id)
    assert {"actor": "admin", "what": "HoldOrder"} in history and {"actor": "admin", "what": "ReleaseOrder"} in history
    assert "HoldOrder" in await page.text_content("[data-testid=history]")


async def test_a_cancellation_needs_each_of_its_three_choices_and_then_cancels_the_order(stack, console):
    order, order_id = await console.submit(960_002)
    await console.wait_stage(order_id, "awaiting_payment")
    page = await console.logged_in()
    await page.goto(f"{stack.console_url}/orders/{order_id}")

    await page.fill("#cancel-form input[name=reason]", "お客様都合")
    await page.click("button[data-action=cancel]")
    errors = await page.text_content("#form-errors")
    assert all(choice in errors for choice in ("restore_stock", "cancel_payment", "notify_customer"))
    assert await console.stage(order_id) == "awaiting_payment"

    await page.check("#cancel-form input[name=restore_stock][value=yes]")
    await page.check("#cancel-form input[name=cancel_payment][value=yes]")
    await page.check("#cancel-form input[name=notify_customer][value=no]")
    await page.fill("#cancel-form input[name=reason]", "お客様都合")
    await page.click("button[data-action=cancel]")
    await page.wait_for_selector("#reply[data-reply=accepted]")
    assert await page.get_attribute("[data-testid=stage]", "data-stage") == "cancelled"
    assert await console.stage(order_id) == "cancelled"
    assert {"actor": "admin", "what": "cancelled"} in await console.history(order_id)


async def test_an_editor_changes_a_quantity_and_the_order_and_its_total_follow(stack, console, screenshots):
    order, order_id = await console.submit(960_003)
    await console.wait_stage(order_id, "awaiting_payment")
    line = order.deliveries[0].lines[0]
    page = await console.logged_in()
    await page.goto(f"{stack.console_url}/orders/{order_id}")

    await page.fill(f"#edit-form input[name='qty:0:{line.sku}']", str(line.quantity + 2))
    await page.check("#edit-form input[name=adjust_stock][value=yes]")
    await page.fill("#edit-form input[name=reason]", "数量変更のご依頼")
    await page.click("button[data-action=edit]")
    await page.wait_for_selector("#reply[data-reply=accepted]")
    shown = await page.text_content(f"[data-testid=lines-0] tr[data-sku='{line.sku}'] [data-testid=qty]")
    assert shown.strip() == str(line.quantity + 2)
    [row] = await fetch(stack.service_dsns["orders"], "SELECT snapshot, total FROM orders WHERE order_id = $1", order_id)
    stored = {l["sku"]: l["quantity"] for l in json.loads(row["snapshot"])["deliveries"][0]["lines"]}
    assert stored[line.sku] == line.quantity + 2
    assert row["total"] == order.charges.total + 2 * line.unit_price
    assert {"actor": "admin", "what": "edited"} in await console.history(order_id)
    await page.screenshot(path=screenshots / "order-edited.png", full_page=True)


async def test_a_bulk_status_change_on_50_orders_reports_each_and_changes_every_one(stack, console, screenshots):
    name = f"一括 {RUN}"
    submitted = await asyncio.gather(*(console.submit(961_000 + n, customer_name=name) for n in range(50)))
    for _, order_id in submitted:
        await console.wait_stage(order_id, "awaiting_payment")
    page = await console.logged_in()
    await page.goto(f"{stack.console_url}/orders?q={name}")
    assert (await page.text_content("[data-testid=total]")).startswith("50 ")

    await page.select_option("select[name=action]", "status")
    await page.fill("#bulk input[name=value]", "出荷準備中")
    await page.select_option("select[name=scope]", "filter")
    await page.click("#bulk button[name=run]")
    await page.wait_for_selector("[data-testid=bulk-summary]")
    assert await page.locator("tr[data-result=ok]").count() == 50
    await page.screenshot(path=screenshots / "bulk-results.png", full_page=True)
    rows = await fetch(
        stack.service_dsns["orders"], "SELECT child_status FROM orders WHERE order_id = ANY($1::uuid[])",
        [order_id for _, order_id in submitted],
    )
    assert [row["child_status"] for row in rows] == ["出荷準備中"] * 50


async def test_a_viewer_sees_orders_but_is_refused_an_edit(stack, console, screenshots):
    order, order_id = await console.submit(960_004)
    await console.wait_stage(order_id, "awaiting_payment")
    admin = await console.logged_in()
    await admin.goto(f"{stack.console_url}/accounts")
    viewer_name = f"viewer-{RUN}"
    await admin.fill("form[action='/accounts'] input[name=username]", viewer_name)
    await admin.select_option("form[action='/accounts'] select[name=role]", "viewer")
    await admin.fill("form[action='/accounts'] input[name=password]", "view-only-password")
    await admin.click("form[action='/accounts'] button[type=submit]")
    await admin.wait_for_selector(f"tr[data-username='{viewer_name}']")
    await admin.screenshot(path=screenshots / "accounts.png", full_page=True)

    viewer = await console.logged_in(viewer_name, "view-only-password")
    await viewer.goto(f"{stack.console_url}/orders/{order_id}")
    assert await viewer.locator("#edit-form").count() == 0
    assert await viewer.locator("button[data-action=hold]").count() == 0
    csrf = await viewer.get_attribute("form[action='/logout'] input[name=csrf]", "value")
    line = order.deliveries[0].lines[0]
    refused = await viewer.request.post(
        f"{stack.console_url}/orders/{order_id}/edit",
        form={"csrf": csrf, f"qty:0:{line.sku}": "9", f"was:0:{line.sku}": str(line.quantity), "adjust_stock": "no", "reason": "x"},
    )
    assert refused.status == 403
    assert "viewer" in await refused.text()
    without_token = await viewer.request.post(f"{stack.console_url}/orders/{order_id}/hold", form={"reason": "x"})
    assert without_token.status == 403
    [row] = await fetch(stack.service_dsns["orders"], "SELECT snapshot FROM orders WHERE order_id = $1", order_id)
    assert json.loads(row["snapshot"])["deliveries"][0]["lines"][0]["quantity"] == line.quantity


async def test_the_order_list_downloads_as_utf8_with_a_bom_and_as_shift_jis(stack, console):
    name = f"髙橋 {RUN}"
    order, order_id = await console.submit(960_005, customer_name=name)
    await console.wait_stage(order_id, "awaiting_payment")
    page = await console.logged_in()
    for encoding, codec in (("utf-8", "utf-8-sig"), ("shift_jis", "cp932")):
        answer = await page.request.get(f"{stack.console_url}/orders.csv", params={"q": order.external_order_no, "encoding": encoding})
        assert answer.status == 200
        body = await answer.body()
        assert body.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8")
        text = body.decode(codec)
        header, row = text.splitlines()[:2]
        assert header.startswith("受注番号,") and "入金" in header
        assert row.startswith(order.external_order_no) and name in row and "入金待ち" in row


async def test_bad_input_gets_a_4xx_with_a_reason_and_never_a_5xx(stack):
    async with httpx.AsyncClient(base_url=stack.console_url, follow_redirects=False, timeout=30) as client:
        assert (await client.get("/orders")).status_code == 303
        login_form = await client.get("/login")
        csrf = login_form.cookies.get("om_login_csrf") or client.cookies.get("om_login_csrf")
        wrong = await client.post("/login", data={"csrf": csrf, "username": "admin", "password": "wrong-password"})
        assert wrong.status_code == 401
        assert (await client.post("/login", data={"username": "admin", "password": "x"})).status_code == 403
        nul = await client.post("/login", data={"csrf": csrf, "username": "ad\x00min", "password": "x"})
        assert nul.status_code == 400
        ok = await client.post("/login", data={"csrf": csrf, "username": "admin", "password": stack.console_admin_password})
        assert ok.status_code == 303
        for path in ("/orders?q=%00", "/orders?page=x", "/orders?created_from=2026-13-01", "/orders.csv?encoding=latin-1",
                     "/orders/not-a-uuid", f"/orders/{uuid.uuid4()}", "/tasks?page=%F0%9F", "/orders?q=" + "x" * 500):
            answer = await client.get(path)
            assert 400 <= answer.status_code < 500, (path, answer.status_code)
        page = await client.get("/orders")
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        any_order = page.text.split('href="/orders/', 1)[1].split('"', 1)[0]
        for form in (
            {"csrf": csrf, "qty:0:SKU-001": "99999999999999999999", "was:0:SKU-001": "1", "adjust_stock": "no", "reason": "x"},
            {"csrf": csrf, "adjust_stock": "maybe", "reason": "x"},
            {"csrf": csrf, "qty:0:SKU-001": "-1", "adjust_stock": "no", "reason": ""},
        ):
            answer = await client.post(f"/orders/{any_order}/edit", data=form)
            assert answer.status_code == 422, answer.text[:500]
        assert (await client.post(f"/orders/{any_order}/hold", data={"csrf": csrf, "reason": "a\x00b"})).status_code == 400
        assert (await client.post(f"/orders/{any_order}/teleport", data={"csrf": csrf})).status_code == 404
        assert (await client.post("/orders/bulk", data={"csrf": csrf, "action": "status", "order": "nonsense"})).status_code == 422


async def test_an_admin_sets_shipping_fees_and_sees_every_reason_a_rule_set_is_refused(stack, console, screenshots):
    page = await console.logged_in()
    shop = f"console-shop-{RUN}"
    await page.goto(f"{stack.console_url}/settings?shop_id={shop}")
    await page.fill("form[action='/settings/shipping_fees'] input[name=fee]", "770")
    await page.fill("form[action='/settings/shipping_fees'] textarea[name=by_prefecture]", "北海道=1320\n沖縄県=1650")
    await page.click("form[action='/settings/shipping_fees'] button[type=submit]")
    await page.wait_for_selector("#reply[data-reply=accepted]")
    rows = await fetch(stack.service_dsns["orders"], "SELECT shop_id FROM shop_shipping_fees WHERE shop_id = $1", shop)
    assert len(rows) == 1

    await page.fill("form[action='/settings/rules'] textarea[name=rule_set]", '{"groups": [{"name": "g", "rules": [{"name": "r", "conditions": [{"field": "no_such_field", "op": "eq", "value": 1}], "actions": [{"type": "explode"}]}]}]}')
    await page.click("form[action='/settings/rules'] button[type=submit]")
    await page.wait_for_selector("#reply[data-reply=rejected]")
    reasons = await page.locator("#reply li").all_text_contents()
    assert len(reasons) == 2 and "conditions.0.field" in reasons[0] and "actions.0" in reasons[1]
    await page.screenshot(path=screenshots / "settings-rules-refused.png", full_page=True)

    await page.goto(f"{stack.console_url}/tasks")
    await page.screenshot(path=screenshots / "tasks.png", full_page=True)
    await page.goto(f"{stack.console_url}/operations/health")
    assert await page.locator("[data-testid=health] .tone-good").count() == 5
    await page.click("a:text('English')")
    await page.wait_for_selector("text=Health")
    assert await page.locator("[data-testid=health] .tone-good").count() == 5
    await page.screenshot(path=screenshots / "health-en.png", full_page=True)


async def test_an_operator_replays_a_dead_letter_and_its_decision_and_the_replayed_record_show(stack, console, screenshots):
    marker = f"not json {RUN}".encode()
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, marker, key=RUN.encode())
    page = await console.logged_in()

    async def listed() -> bool:
        await page.goto(f"{stack.console_url}/operations/dead-letters?topic=shop.orders.v1&status=pending")
        return await page.locator("tr[data-letter]", has_text=RUN).count() > 0

    await eventually(listed, timeout=120, interval=2)
    await page.screenshot(path=screenshots / "dead-letters.png", full_page=True)
    letter_id = await page.locator("tr[data-letter]", has_text=RUN).first.get_attribute("data-letter")
    await page.goto(f"{stack.console_url}/operations/dead-letters/{letter_id}")
    await page.fill("form[action$='/replay'] input[name=reason]", "再投入テスト")
    await page.click("button[data-action=replay]")
    await page.wait_for_selector("[data-testid=status][data-status=replayed]")
    await page.screenshot(path=screenshots / "dead-letter-replayed.png", full_page=True)

    async def published_twice() -> bool:
        records = await read_topic(stack.bootstrap, topics.SHOP_ORDERS)
        return sum(1 for r in records if r.value == marker) == 2

    await eventually(published_twice, timeout=120, interval=2)


async def read_topic(bootstrap: str, topic: str) -> list:
    """Every record of a topic, from the beginning to its end now."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        records = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()
