"""The order page's remaining actions in a real browser: confirm the address and the delivery date, add and close a
task, resend a mail, split into a new order and merge it back — each answer shown on the page, each effect checked in the
services' databases."""

import json
import uuid
from datetime import date

from ordermesh_devstack.demo import demo_order
from support import eventually, fetch

RUN = uuid.uuid4().hex[:6]


async def _flags(console, order_id) -> dict:
    return json.loads((await console.row(order_id, "flags"))["flags"])


async def test_staff_confirm_the_address_and_the_delivery_date_and_add_and_close_a_task_from_the_order_page(
    stack, console, screenshots
):
    order = demo_order(963_001)
    wrong_city = order.deliveries[0].address.model_copy(update={"postal_code": "530-0001"})
    too_early = order.deliveries[0].model_copy(update={"address": wrong_city, "requested_date": date.today()})
    order, order_id = await console.submit(963_001, deliveries=[too_early])
    await eventually(lambda: _flags_are(console, order_id, address="error", delivery_date="error"), timeout=120, interval=0.5)
    page = await console.logged_in()
    await page.goto(f"{stack.console_url}/orders/{order_id}")
    assert await page.get_attribute("[data-testid=stage]", "data-stage") == "review"

    await page.click("button[data-action=confirm_address]")
    await page.wait_for_selector("#reply[data-reply=accepted]")
    assert (await _flags(console, order_id))["address"] == "confirmed"
    assert await page.locator("button[data-action=confirm_address]").count() == 0

    await page.click("button[data-action=confirm_date]")
    await page.wait_for_selector("#reply[data-reply=accepted]")
    assert (await _flags(console, order_id))["delivery_date"] == "confirmed"
    assert await page.get_attribute("[data-flag=delivery_date]", "data-value") == "confirmed"

    add = page.locator("form[action$='/add_task']")
    await add.locator("input[name=note]").fill(f"お客様へ電話 {RUN}")
    await add.locator("select[name=blocking]").select_option("yes")
    await add.locator("button").click()
    await page.wait_for_selector("#reply[data-reply=accepted]")
    [task] = await fetch(
        stack.service_dsns["orders"], "SELECT task_id, blocking, opened_by FROM order_tasks WHERE order_id = $1 AND note = $2",
        order_id, f"お客様へ電話 {RUN}",
    )
    assert (task["blocking"], task["opened_by"]) == (True, "admin")
    close = page.locator(f"[data-testid=tasks] form:has(input[name=task_id][value='{task['task_id']}'])")
    await close.locator("input[name=note]").fill("電話で確認済み")
    await close.locator("button").click()
    await page.wait_for_selector("#reply[data-reply=accepted]")
    [closed] = await fetch(
        stack.service_dsns["orders"], "SELECT status, closed_by, close_note FROM order_tasks WHERE order_id = $1 AND task_id = $2",
        order_id, task["task_id"],
    )
    assert (closed["status"], closed["closed_by"], closed["close_note"]) == ("closed", "admin", "電話で確認済み")
    history = {(h["actor"], h["what"]) for h in await console.history(order_id)}
    assert {("admin", "ConfirmAddress"), ("admin", "ConfirmDeliveryDate")} <= history
    await page.screenshot(path=screenshots / "order-confirmed.png", full_page=True)


async def _flags_are(console, order_id, **expected) -> bool:
    row = await console.row(order_id, "flags")
    return bool(row) and all(json.loads(row["flags"]).get(k) == v for k, v in expected.items())


async def _sent(query) -> list:
    return [m for m in await query() if m["status"] == "sent"]


def _order_with_two_units() -> int:
    return next(n for n in range(963_100, 963_400) if demo_order(n).deliveries[0].lines[0].quantity >= 2)


async def test_staff_resend_a_mail_then_split_the_order_into_a_new_one_and_merge_them_back_by_shop_order_number(
    stack, console, screenshots
):
    number = _order_with_two_units()
    order, order_id = await console.submit(number)
    await console.wait_stage(order_id, "awaiting_payment")
    line = order.deliveries[0].lines[0]

    async def mails() -> list:
        return await fetch(
            stack.service_dsns["notify"], "SELECT mail_id, kind, status FROM mail_log WHERE order_id = $1 ORDER BY created_at",
            order_id,
        )

    first = (await eventually(lambda: _sent(mails), timeout=120, interval=0.5))[0]
    page = await console.logged_in()
    await page.goto(f"{stack.console_url}/orders/{order_id}")
    await page.click(f"[data-testid=mails] form:has(input[name=mail_id][value='{first['mail_id']}']) button")
    await page.wait_for_selector("#reply[data-reply=accepted]")
    assert "ResendMail" in await page.text_content("#reply")

    async def resent() -> bool:
        return sum(1 for m in await mails() if m["kind"] == first["kind"] and m["status"] == "sent") == 2

    await eventually(resent, timeout=120, interval=0.5)

    await page.fill(f"#split-form input[name='move:0:{line.sku}']", "1")
    await page.select_option("#split-form select[name=into]", "order")
    await page.click("button[data-action=split]")
    await page.wait_for_selector("#reply[data-reply=accepted]")
    new_order_id = (await page.text_content("[data-testid=reply-details] [data-key=new_order_id] a")).strip()
    new_row = await eventually(lambda: console.row(uuid.UUID(new_order_id), "external_order_no, snapshot"), timeout=120)
    assert new_row["external_order_no"] == f"{order.external_order_no}-S1"
    assert [(l["sku"], l["quantity"]) for l in json.loads(new_row["snapshot"])["deliveries"][0]["lines"]] == [(line.sku, 1)]
    source = json.loads((await console.row(order_id, "snapshot"))["snapshot"])
    assert {l["sku"]: l["quantity"] for l in source["deliveries"][0]["lines"]}[line.sku] == line.quantity - 1
    await page.screenshot(path=screenshots / "order-split.png", full_page=True)
    await console.wait_stage(uuid.UUID(new_order_id), "awaiting_payment")

    await page.fill("#merge-form input[name=other_order_ids]", order.external_order_no)
    await page.click("button[data-action=merge]")
    await page.wait_for_selector("#reply[data-reply=rejected]")
    assert await page.locator("#reply li").all_text_contents() == ["an order is listed twice"]
    await page.fill("#merge-form input[name=other_order_ids]", f"{order.external_order_no}-S1")
    await page.click("button[data-action=merge]")
    await page.wait_for_selector("#reply[data-reply=accepted]")
    merged_id = uuid.UUID((await page.text_content("[data-testid=reply-details] [data-key=order_id] a")).strip())
    merged = await eventually(lambda: console.row(merged_id, "snapshot"), timeout=120)
    assert sum(l["quantity"] for l in json.loads(merged["snapshot"])["deliveries"][0]["lines"] if l["sku"] == line.sku) == line.quantity
    for source_id in (order_id, uuid.UUID(new_order_id)):
        await console.wait_stage(source_id, "cancelled")
