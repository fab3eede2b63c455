"""End to end on the real broker, reading the SMTP sink: every mail kind of a prepaid order reaches the customer with
its subject, both parts and the shop's signature and sets the order's mail flag; staff's message, resend and bulk mail
go out with a result per order; the settings CLI changes only what it is given."""

import asyncio
import json
import uuid

from ordermesh_contracts import MailKind, Payment, PaymentMethod, ResendMail, SendBulkMail, SendMessageToCustomer, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_devstack.sandboxes.smtp_sink import read_mails
from ordermesh_ops.client import Connection, send_command
from support import eventually, fetch
from test_points_cancellation import pay_by_callback, place
from test_points_ordering import _cli, cli

SUBJECTS = {
    "order_confirmation": "【ご注文確認】", "payment_instructions": "【お支払いのご案内】", "payment_received": "【ご入金確認】",
    "preparing_shipment": "【発送準備中】", "shipped": "【発送のお知らせ】", "points_confirmed": "【ポイント確定】",
}


def _shop() -> str:
    return f"ntf-{uuid.uuid4().hex[:8]}"


def _mails_to(stack, address: str) -> list:
    return [mail for mail in read_mails(stack.maildir) if mail["To"] == address]


def _kind_of(mail) -> str | None:
    return next((kind for kind, prefix in SUBJECTS.items() if mail["Subject"].startswith(prefix)), None)


async def _flags(stack, order_id) -> dict:
    [row] = await fetch(stack.service_dsns["orders"], "SELECT flags FROM orders WHERE order_id = $1", order_id)
    return json.loads(row["flags"]) if isinstance(row["flags"], str) else row["flags"]


async def _command(stack, command) -> dict:
    return await send_command(Connection(bootstrap=stack.bootstrap, service_urls={}, token=stack.api_token), topics.NOTIFY_COMMANDS, command)


async def test_the_settings_cli_changes_only_what_it_is_given_and_kinds_off_by_default_stay_off(stack):
    shop = _shop()
    [[fresh]] = await asyncio.to_thread(_cli, stack, "notify", "settings", shop, "--json")
    assert (fresh["customised"], fresh["disabled_kinds"]) == (False, ["points_confirmed", "preparing_shipment"])
    await asyncio.to_thread(cli, stack, "notify", "settings", shop, "--signature", "京都茶舗")
    [[signed]] = await asyncio.to_thread(_cli, stack, "notify", "settings", shop, "--json")
    assert (signed["signature"], signed["language"], signed["disabled_kinds"]) == ("京都茶舗", "ja", ["points_confirmed", "preparing_shipment"])
    await asyncio.to_thread(cli, stack, "notify", "settings", shop, "--on", "points_confirmed", "--off", "shipped", "--encoding", "iso-2022-jp")
    await asyncio.to_thread(cli, stack, "notify", "settings", shop, "--language", "en")
    [[now]] = await asyncio.to_thread(_cli, stack, "notify", "settings", shop, "--json")
    assert (now["signature"], now["language"], now["encoding"], now["disabled_kinds"]) == (
        "京都茶舗", "en", "iso-2022-jp", ["preparing_shipment", "shipped"],
    )
    [row] = await fetch(stack.service_dsns["notify"], "SELECT disabled_kinds FROM shop_mail_settings WHERE shop_id = $1", shop)
    assert sorted(row["disabled_kinds"]) == ["preparing_shipment", "shipped"]


async def test_every_mail_of_a_prepaid_order_arrives_once_with_both_parts_and_sets_its_flag_and_staff_mails_answer_per_order(stack, recorder):
    shop = _shop()
    await asyncio.to_thread(cli, stack, "notify", "settings", shop, "--signature", "京都茶舗", "--on", "preparing_shipment", "--on", "points_confirmed")
    address = f"every-{uuid.uuid4().hex[:8]}@example.com"
    base = demo_order(996_001, shop_id=shop)
    order = base.model_copy(update={
        "payment": Payment(method=PaymentMethod.BANK_TRANSFER), "customer": base.customer.model_copy(update={"email": address}),
    })
    order_id = await place(stack, order)
    await pay_by_callback(stack, recorder, order_id, order.charges.total)
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)
    await recorder.wait_for(topics.NOTIFY_EVENTS, count=6, type="MailSent", order_id=order_id, timeout=60)

    mails = _mails_to(stack, address)
    assert sorted(_kind_of(m) for m in mails) == sorted(SUBJECTS)
    for mail in mails:
        assert mail["Subject"].endswith(f"ご注文番号 {order.external_order_no}")
        assert mail.get_content_type() == "multipart/alternative"
        text, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
        assert "京都茶舗" in text and "京都茶舗" in html and order.customer.name in text
    by_kind = {_kind_of(m): m.get_body(("plain",)).get_content() for m in mails}
    [requested] = recorder.on(topics.PAYMENTS_EVENTS, type="PaymentRequested", order_id=order_id)
    request = requested.json()
    for value in (request["reference"], f"{request['amount']:,}円", request["due_date"]):
        assert value in by_kind["payment_instructions"]
    assert f"{order.charges.total:,}円" in by_kind["payment_received"]
    [confirmed] = recorder.on(topics.POINTS_EVENTS, type="PointsConfirmed", order_id=order_id)
    assert f"{confirmed.json()['points']}ポイント" in by_kind["points_confirmed"]
    [shipment] = await fetch(stack.service_dsns["shipping"], "SELECT tracking_number FROM shipments WHERE order_id = $1", order_id)
    assert shipment["tracking_number"] in by_kind["shipped"]
    flags = await _flags(stack, order_id)
    assert {kind: flags.get(f"mail_{kind}") for kind in SUBJECTS} == {kind: "sent" for kind in SUBJECTS}

    message = await _command(stack, SendMessageToCustomer(
        shop_id=shop, issued_by="e2e", order_id=order_id, subject="入荷のご連絡", message="追加のご注文の品が入荷しました。",
    ))
    assert message["type"] == "CommandAccepted" and [r["ok"] for r in message["results"]] == [True], message
    [shipped_mail] = await fetch(
        stack.service_dsns["notify"], "SELECT mail_id FROM mail_log WHERE order_id = $1 AND kind = 'shipped' AND status = 'sent'", order_id
    )
    resent = await _command(stack, ResendMail(shop_id=shop, issued_by="e2e", order_id=order_id, mail_id=shipped_mail["mail_id"]))
    assert resent["type"] == "CommandAccepted" and [r["ok"] for r in resent["results"]] == [True], resent
    nobody = uuid.uuid4()
    bulk = await _command(stack, SendBulkMail(
        shop_id=shop, issued_by="e2e", mail_kind=MailKind.MESSAGE_TO_CUSTOMER, order_ids=[order_id, nobody],
        subject="年末年始のお知らせ", message="12月29日から1月3日まで休業いたします。",
    ))
    assert {r["item"]: (r["ok"], r["reason"]) for r in bulk["results"]} == {
        str(order_id): (True, None), str(nobody): (False, f"order {nobody} of shop {shop} is unknown to notify"),
    }

    await eventually(lambda: len(_mails_to(stack, address)) >= 9, timeout=30)
    extra = _mails_to(stack, address)[len(mails):]
    assert sorted(m["Subject"] for m in extra) == sorted([
        f"【入荷のご連絡】ご注文番号 {order.external_order_no}", f"【年末年始のお知らせ】ご注文番号 {order.external_order_no}",
        f"【発送のお知らせ】ご注文番号 {order.external_order_no}",
    ])
    message_text = next(m for m in extra if "入荷" in m["Subject"]).get_body(("plain",)).get_content()
    assert "追加のご注文の品が入荷しました。" in message_text and "京都茶舗" in message_text
    resent_text = next(m for m in extra if m["Subject"].startswith("【発送")).get_body(("plain",)).get_content()
    assert resent_text == by_kind["shipped"]
    log = await fetch(stack.service_dsns["notify"], "SELECT kind, status FROM mail_log WHERE order_id = $1", order_id)
    assert sorted((r["kind"], r["status"]) for r in log) == sorted(
        [(kind, "sent") for kind in SUBJECTS] + [("message_to_customer", "sent")] * 2 + [("shipped", "sent")]
    )
