"""End to end on the real broker: customer mails at the SMTP sink per shop and device, failures named, mails wait out an SMTP outage."""

import asyncio
import json

import httpx
from uuid import UUID

from ordermesh_contracts import Device, MailKind, PreviewMail, SaveMailTemplate, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_devstack.sandboxes.smtp_sink import read_mails
from ordermesh_ops.client import Connection, send_command
from support import eventually, fetch, publish_raw

SHOP = "notify-e2e-shop"


def _order(number: int, *, shop_id: str = "demo-shop", **customer):
    order = demo_order(number, shop_id=shop_id)
    order = order.model_copy(update={"customer": order.customer.model_copy(update=customer)})
    return order, order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def _submit(stack, order) -> None:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())


def _mails_to(stack, address: str):
    return [mail for mail in read_mails(stack.maildir) if mail["To"] == address]


async def _flags(stack, order_id) -> dict:
    [row] = await fetch(stack.service_dsns["orders"], "SELECT flags FROM orders WHERE order_id = $1", order_id)
    flags = row["flags"]
    return json.loads(flags) if isinstance(flags, str) else flags


def _connection(stack) -> Connection:
    return Connection(bootstrap=stack.bootstrap, service_urls={}, token=stack.api_token)


async def test_confirmation_and_shipped_mails_arrive_with_both_parts_and_the_template_of_the_shop_and_device(stack, recorder):
    template = SaveMailTemplate(
        shop_id=SHOP, issued_by="e2e", mail_kind=MailKind.ORDER_CONFIRMATION, device="mobile",
        subject="[mobile] {{ external_order_no }}", text="{{ customer_name }} 様 (mobile)\n{{ total }}円\n",
    )
    reply = await send_command(_connection(stack), topics.NOTIFY_COMMANDS, template)
    assert reply["type"] == "CommandAccepted", reply
    mobile, mobile_id = _order(910_001, shop_id=SHOP, device=Device.MOBILE, email="mobile910001@example.com")
    pc, pc_id = _order(910_002, shop_id=SHOP, email="pc910002@example.com")
    await asyncio.gather(_submit(stack, mobile), _submit(stack, pc))
    for order_id in (mobile_id, pc_id):
        await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)

    for order, order_id, device in ((mobile, mobile_id, "mobile"), (pc, pc_id, "pc")):
        mails = _mails_to(stack, order.customer.email)
        assert len(mails) == 2
        assert any(order.external_order_no in m["Subject"] and "発送" not in m["Subject"] for m in mails)
        shipped = next(m for m in mails if "発送" in m["Subject"])
        for mail in mails:
            assert mail.get_content_type() == "multipart/alternative"
            assert mail.get_body(("plain",)) is not None and mail.get_body(("html",)) is not None
        [shipment] = await fetch(stack.service_dsns["shipping"], "SELECT tracking_number FROM shipments WHERE order_id = $1", order_id)
        assert shipment["tracking_number"] in shipped.get_body(("plain",)).get_content()
        assert shipment["tracking_number"] in shipped.get_body(("html",)).get_content()
        assert f'content="{device}"' in shipped.get_body(("html",)).get_content()
        flags = await _flags(stack, order_id)
        assert (flags["mail_order_confirmation"], flags["mail_shipped"]) == ("sent", "sent")
    mobile_confirmation = next(m for m in _mails_to(stack, mobile.customer.email) if "発送" not in m["Subject"])
    pc_confirmation = next(m for m in _mails_to(stack, pc.customer.email) if "発送" not in m["Subject"])
    assert mobile_confirmation["Subject"] == f"[mobile] {mobile.external_order_no}"
    assert "(mobile)" in mobile_confirmation.get_body(("plain",)).get_content()
    assert pc_confirmation["Subject"] == f"【ご注文確認】ご注文番号 {pc.external_order_no}"

    response = httpx.get(
        f"http://127.0.0.1:{stack.processes['notify'].http_port}/api/notify/mails",
        params={"order_id": str(mobile_id)}, headers={"Authorization": f"Bearer {stack.api_token}"},
    )
    log = response.json()
    assert sorted(row["kind"] for row in log if row["status"] == "sent") == ["order_confirmation", "shipped"]
    assert {row["recipient"] for row in log if row["status"] == "sent"} == {"m***@example.com"}


async def test_a_template_that_does_not_render_is_refused_with_the_reason(stack):
    template = SaveMailTemplate(
        shop_id=SHOP, issued_by="e2e", mail_kind=MailKind.ORDER_CONFIRMATION, subject="ok", text="{{ tracking_number }}",
    )
    reply = await send_command(_connection(stack), topics.NOTIFY_COMMANDS, template)
    assert reply["type"] == "CommandRejected"
    assert reply["reasons"] == ["template variable missing: 'tracking_number' is undefined"]


async def test_a_recipient_the_server_refuses_ends_as_mail_failed_with_the_550_reason_after_one_attempt_and_a_task_for_staff(stack, recorder):
    order, order_id = _order(910_003, email="reject910003@example.com")
    await _submit(stack, order)
    [failed] = await recorder.wait_for(topics.NOTIFY_EVENTS, type="MailFailed", order_id=order_id, mail_kind="order_confirmation")
    assert failed.json()["reason"].startswith("550")
    rows = await fetch(stack.service_dsns["notify"], "SELECT status, attempts FROM mail_log WHERE order_id = $1 AND kind = 'order_confirmation'", order_id)
    assert [(r["status"], r["attempts"]) for r in rows] == [("failed", 1)]
    assert await eventually(lambda: _flag_is(stack, order_id, "mail_order_confirmation", "failed"))
    [task] = await eventually(
        lambda: fetch(stack.service_dsns["orders"], "SELECT kind, status FROM order_tasks WHERE order_id = $1 AND kind = 'mail_failed'", order_id)
    )
    assert task["status"] == "open"
    assert _mails_to(stack, order.customer.email) == []


async def _flag_is(stack, order_id, flag, value) -> bool:
    return (await _flags(stack, order_id)).get(flag) == value


async def test_an_order_without_an_address_gets_mail_not_applicable(stack, recorder):
    order, order_id = _order(910_004, email=None)
    await _submit(stack, order)
    [event] = await recorder.wait_for(topics.NOTIFY_EVENTS, type="MailNotApplicable", order_id=order_id, mail_kind="order_confirmation")
    assert event.json()["reason"] == "no e-mail address"
    assert await eventually(lambda: _flag_is(stack, order_id, "mail_order_confirmation", "not_applicable"))


async def test_a_preview_renders_the_mail_for_the_order_without_sending_it(stack, recorder):
    order, order_id = _order(910_005, email="preview910005@example.com")
    await _submit(stack, order)
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    [shipment] = await fetch(stack.service_dsns["shipping"], "SELECT tracking_number FROM shipments WHERE order_id = $1", order_id)
    reply = await send_command(
        _connection(stack), topics.NOTIFY_COMMANDS,
        PreviewMail(shop_id=order.shop_id, issued_by="e2e", order_id=order_id, mail_kind=MailKind.SHIPPED, device="mobile"),
    )
    assert reply["type"] == "CommandAccepted", reply
    details = reply["details"]
    assert details["subject"] == f"【発送のお知らせ】ご注文番号 {order.external_order_no}"
    assert f"お問い合わせ番号: {shipment['tracking_number']}" in details["text"] and 'content="mobile"' in details["html"]
    await asyncio.sleep(1)
    assert len(_mails_to(stack, order.customer.email)) == 2
    logged = await fetch(stack.service_dsns["notify"], "SELECT count(*) AS n FROM mail_log WHERE cause_id = $1", UUID(reply["command_id"]))
    assert logged[0]["n"] == 0


async def test_mails_wait_while_the_smtp_server_is_down_and_arrive_exactly_once_when_it_is_back(stack, recorder):
    smtp = stack.processes["smtp"]
    order, order_id = _order(910_006, email="outage910006@example.com")
    smtp.stop()
    try:
        await _submit(stack, order)
        rows = await eventually(
            lambda: fetch(
                stack.service_dsns["notify"],
                "SELECT status, attempts FROM mail_log WHERE order_id = $1 AND kind = 'order_confirmation' AND attempts >= 2",
                order_id,
            ),
            timeout=60,
        )
        assert rows[0]["status"] == "sending"
        await asyncio.sleep(3)
        assert recorder.on(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id) == []
        assert _mails_to(stack, order.customer.email) == []
    finally:
        smtp.start()
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)
    await eventually(lambda: len(_mails_to(stack, order.customer.email)) >= 2, timeout=60)
    await asyncio.sleep(3)
    mails = _mails_to(stack, order.customer.email)
    assert sorted("発送" in m["Subject"] for m in mails) == [False, True]
    await recorder.wait_for(topics.NOTIFY_EVENTS, count=2, type="MailSent", order_id=order_id)
    sent = recorder.on(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id)
    assert sorted(m.json()["mail_kind"] for m in sent) == ["order_confirmation", "shipped"]
