"""The settings pages in a real browser: payment settings (payments), the shipping calendar (shipping), mail settings,
templates and a preview (notify) — every refusal shown with its reasons, every accepted setting read back from the
owning service's database."""

import json
import uuid

from support import fetch

RUN = uuid.uuid4().hex[:6]


async def test_an_admin_sets_payment_settings_and_the_shipping_calendar_and_sees_every_reason_one_is_refused(
    stack, console, screenshots
):
    shop = f"console-settings-{RUN}"
    page = await console.logged_in()
    await page.goto(f"{stack.console_url}/settings?shop_id={shop}")

    payments = "#settings-payments"
    assert await page.input_value(f"{payments} input[name=prepaid_due_days]") == "7"  # payments' defaults for a new shop
    assert await page.input_value(f"{payments} select[name=capture_at_authorization]") == "no"
    await page.fill(f"{payments} input[name=prepaid_due_days]", "10")
    await page.select_option(f"{payments} select[name=capture_at_authorization]", "yes")
    await page.fill(f"{payments} input[name=bank_account]", "京都中央銀行 本店営業部 普通 1234567")
    await page.click("button[data-settings=payments]")
    await page.wait_for_selector("#reply[data-reply=accepted]")
    [row] = await fetch(
        stack.service_dsns["payments"],
        "SELECT prepaid_due_days, capture_at_authorization, bank_account, updated_by FROM payment_settings WHERE shop_id = $1",
        shop,
    )
    assert dict(row) == {"prepaid_due_days": 10, "capture_at_authorization": True,
                         "bank_account": "京都中央銀行 本店営業部 普通 1234567", "updated_by": "admin"}
    assert await page.input_value(f"{payments} input[name=prepaid_due_days]") == "10"
    assert await page.input_value(f"{payments} select[name=capture_at_authorization]") == "yes"
    assert await page.input_value(f"{payments} input[name=bank_account]") == "京都中央銀行 本店営業部 普通 1234567"

    await page.fill(f"{payments} input[name=prepaid_due_days]", "99")
    async with page.expect_navigation():
        await page.evaluate("document.querySelector('#settings-payments').submit()")  # past the browser's own max=60
    errors = await page.text_content("#form-errors")
    assert "prepaid_due_days" in errors
    assert (await fetch(stack.service_dsns["payments"], "SELECT prepaid_due_days FROM payment_settings WHERE shop_id = $1", shop))[0][0] == 10

    calendar = "#settings-calendar"
    assert await page.input_value(f"{calendar} input[name=cutoff]") == "15:00"  # shipping's defaults for a new shop
    assert [await page.is_checked(f"{calendar} input[name=closed_weekdays][value='{day}']") for day in (4, 5, 6)] == [
        False, True, True
    ]
    await page.fill(f"{calendar} input[name=cutoff]", "13:30")
    await page.check(f"{calendar} input[name=change_weekdays]")
    await page.uncheck(f"{calendar} input[name=closed_weekdays][value='5']")
    await page.fill(f"{calendar} textarea[name=closures]", "2026-12-31\n2027-01-01")
    await page.click("button[data-settings=calendar]")
    await page.wait_for_selector("#reply[data-reply=accepted]")
    [row] = await fetch(
        stack.service_dsns["shipping"], "SELECT cutoff::text, closed_weekdays, closures::text[] FROM shops WHERE shop_id = $1", shop
    )
    assert (row["cutoff"], row["closed_weekdays"], row["closures"]) == ("13:30:00", [6], ["2026-12-31", "2027-01-01"])
    assert await page.input_value(f"{calendar} input[name=cutoff]") == "13:30"
    assert await page.input_value(f"{calendar} textarea[name=closures]") == "2026-12-31\n2027-01-01"
    assert [await page.is_checked(f"{calendar} input[name=closed_weekdays][value='{day}']") for day in (5, 6)] == [False, True]

    await page.fill(f"{calendar} input[name=time_zone]", "Mars/Olympus")
    await page.fill(f"{calendar} input[name=cutoff]", "")
    await page.fill(f"{calendar} textarea[name=closures]", "")
    await page.check(f"{calendar} input[name=change_weekdays]")
    for day in range(7):
        await page.check(f"{calendar} input[name=closed_weekdays][value='{day}']")
    await page.click("button[data-settings=calendar]")
    await page.wait_for_selector("#reply[data-reply=rejected]")
    reasons = await page.locator("#reply li").all_text_contents()
    assert len(reasons) == 2 and any("Mars/Olympus" in r for r in reasons)
    [row] = await fetch(stack.service_dsns["shipping"], "SELECT time_zone, closed_weekdays FROM shops WHERE shop_id = $1", shop)
    assert (row["time_zone"], row["closed_weekdays"]) == ("Asia/Tokyo", [6])
    await page.screenshot(path=screenshots / "settings-calendar-refused.png", full_page=True)


async def test_an_admin_sees_the_shops_points_rules_and_replaces_them_refused_first_with_every_reason(
    stack, console, screenshots
):
    shop = f"console-points-{RUN}"
    page = await console.logged_in()
    await page.goto(f"{stack.console_url}/settings?shop_id={shop}#points-settings")
    points = "#settings-points"
    assert await page.input_value(f"{points} input[name=rate_percent]") == "1"
    assert await page.input_value(f"{points} select[name=confirm_on]") == "either"

    await page.fill(f"{points} input[name=rate_percent]", "3")
    await page.select_option(f"{points} select[name=confirm_on]", "manual")
    await page.select_option(f"{points} select[name=allow_negative]", "yes")
    await page.fill(f"{points} input[name=expiry_months]", "12")
    await page.check(f"{points} input[name=per_event]")
    await page.check(f"{points} input[name=confirm_on_events][value=card_captured]")
    await page.fill(f"{points} textarea[name=campaigns]", "2 | 2026-12-01 | 2026-12-31 | SKU-A, SKU-B\nabc\n5 | 2027-13-01")
    await page.click("button[data-settings=points]")
    errors = await page.locator("#form-errors li").all_text_contents()
    assert [e.split(":")[0] for e in errors] == ["campaigns line 2", "campaigns line 3"]
    assert await fetch(stack.service_dsns["points"], "SELECT 1 FROM shop_settings WHERE shop_id = $1", shop) == []
    assert await page.input_value(f"{points} input[name=rate_percent]") == "3"

    await page.fill(f"{points} textarea[name=campaigns]", "2 | 2026-12-01 | 2026-12-31 | SKU-A, SKU-B\n3")
    await page.click("button[data-settings=points]")
    await page.wait_for_selector("#reply[data-reply=accepted]")
    [row] = await fetch(
        stack.service_dsns["points"],
        "SELECT rate_percent, confirm_on, confirm_on_events, allow_negative, expiry_months, campaigns::text, updated_by"
        " FROM shop_settings WHERE shop_id = $1", shop,
    )
    assert (row["rate_percent"], row["confirm_on"], row["confirm_on_events"], row["allow_negative"], row["expiry_months"],
            row["updated_by"]) == (3, "manual", ["card_captured"], True, 12, "admin")
    assert json.loads(row["campaigns"]) == [
        {"multiplier": 2, "starts_on": "2026-12-01", "ends_on": "2026-12-31", "skus": ["SKU-A", "SKU-B"]},
        {"multiplier": 3, "starts_on": None, "ends_on": None, "skus": None},
    ]
    assert await page.input_value(f"{points} input[name=rate_percent]") == "3"
    assert await page.input_value(f"{points} textarea[name=campaigns]") == "2 | 2026-12-01 | 2026-12-31 | SKU-A, SKU-B\n3"
    assert await page.is_checked(f"{points} input[name=confirm_on_events][value=card_captured]")

    await page.fill(f"{points} input[name=rate_percent]", "-5")
    await page.fill(f"{points} input[name=expiry_months]", "0")
    async with page.expect_navigation():
        await page.evaluate("document.querySelector('#settings-points').submit()")  # past the browser's own min
    await page.wait_for_selector("#reply[data-reply=rejected]")
    reasons = await page.locator("#reply li").all_text_contents()
    assert len(reasons) == 2 and any("rate_percent" in r for r in reasons) and any("expiry_months" in r for r in reasons)
    assert (await fetch(stack.service_dsns["points"], "SELECT rate_percent FROM shop_settings WHERE shop_id = $1", shop))[0][0] == 3
    await page.screenshot(path=screenshots / "settings-points.png", full_page=True)


async def test_an_admin_saves_a_mail_template_refused_with_its_reasons_first_and_previews_it_on_a_real_order(
    stack, console, screenshots
):
    shop = f"console-mail-{RUN}"
    order, order_id = await console.submit(964_001, shop_id=shop)
    await console.wait_stage(order_id, "awaiting_payment")
    page = await console.logged_in()
    await page.goto(f"{stack.console_url}/settings?shop_id={shop}#mail-settings")

    template = "#settings-mail_template"
    await page.select_option(f"{template} select[name=mail_kind]", "order_confirmation")
    await page.fill(f"{template} input[name=subject]", "ご注文ありがとうございます {{ order_no ")
    await page.fill(f"{template} textarea[name=text]", "{{ customer_name }} 様\n{% if %}")
    await page.click("button[data-settings=mail_template]")
    await page.wait_for_selector("#reply[data-reply=rejected]")
    assert await page.locator("#reply li").count() >= 1
    assert await fetch(stack.service_dsns["notify"], "SELECT 1 FROM mail_templates WHERE shop_id = $1", shop) == []

    subject = f"【{RUN}】ご注文ありがとうございます"
    await page.fill(f"{template} input[name=subject]", subject)
    await page.fill(f"{template} textarea[name=text]", "{{ customer_name }} 様\nご注文を承りました。")
    await page.click("button[data-settings=mail_template]")
    await page.wait_for_selector("#reply[data-reply=accepted]")
    [row] = await fetch(stack.service_dsns["notify"], "SELECT subject, updated_by FROM mail_templates WHERE shop_id = $1", shop)
    assert (row["subject"], row["updated_by"]) == (subject, "admin")

    preview = "#settings-mail_preview"
    await page.fill(f"{preview} input[name=order]", order.external_order_no)
    await page.select_option(f"{preview} select[name=mail_kind]", "order_confirmation")
    await page.click("button[data-settings=mail_preview]")
    await page.wait_for_selector("[data-testid=mail-preview]")
    assert (await page.text_content("[data-testid=preview-subject]")).strip() == subject
    assert "山田 太郎 様" in await page.text_content("[data-testid=preview-text]")
    await page.screenshot(path=screenshots / "settings-mail-preview.png", full_page=True)
