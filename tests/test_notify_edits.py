"""End to end on the real broker, counting mails at the SMTP sink: a shop's mail settings (a kind turned off, ISO-2022-JP
and its fall-back to UTF-8) and the order-changed mail, once per edit, only when staff chose to tell the customer."""

import pytest
import asyncio
import json
import uuid

from ordermesh_contracts import (
    LineDiff,
    MailKind,
    OrderEdited,
    SetShopMailSettings,
    ShopOrderSubmitted,
    order_id_for,
    topics,
)
from ordermesh_devstack.demo import demo_order
from ordermesh_devstack.sandboxes.smtp_sink import read_mails
from ordermesh_ops.client import Connection, send_command
from support import eventually, fetch, publish_raw

DEFAULT_OFF = [MailKind.PREPARING_SHIPMENT, MailKind.POINTS_CONFIRMED]


def _shop(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _order(number: int, shop_id: str, *, name: str = "山田 太郎", sku: str | None = None) -> tuple[ShopOrderSubmitted, uuid.UUID]:
    order = demo_order(number, shop_id=shop_id)
    customer = order.customer.model_copy(update={"name": name, "email": f"edits{number}-{uuid.uuid4().hex[:6]}@example.com"})
    order = order.model_copy(update={"customer": customer})
    if sku:  # a sku nobody stocks: the order waits in awaiting_allocation, where it may be edited
        line = order.deliveries[0].lines[0].model_copy(update={"sku": sku})
        total = line.unit_price * line.quantity + order.charges.shipping_fee
        order = order.model_copy(update={
            "deliveries": [order.deliveries[0].model_copy(update={"lines": [line]})],
            "charges": order.charges.model_copy(update={"total": total}),
        })
    return order, order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def _submit(stack, order) -> None:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())


def _mails_about(stack, order, subject_prefix: str = "") -> list:
    """Mails to the order's customer naming its order number (demo customers' addresses repeat across orders),
    whose subject starts with `subject_prefix`."""
    return [
        m for m in _mails_to(stack, order.customer.email)
        if order.external_order_no in str(m["Subject"]) and str(m["Subject"]).startswith(subject_prefix)
    ]


def _mails_to(stack, address: str) -> list:
    return [mail for mail in read_mails(stack.maildir) if mail["To"] == address]


async def _settings(stack, shop_id: str, *, encoding: str = "utf-8", disabled=DEFAULT_OFF) -> None:
    command = SetShopMailSettings(shop_id=shop_id, issued_by="e2e", signature="京都茶舗", encoding=encoding, disabled_kinds=disabled)
    reply = await send_command(Connection(bootstrap=stack.bootstrap, service_urls={}, token=stack.api_token), topics.NOTIFY_COMMANDS, command)
    assert reply["type"] == "CommandAccepted", reply


async def _flag(stack, order_id, name: str):
    rows = await fetch(stack.service_dsns["orders"], "SELECT flags FROM orders WHERE order_id = $1", order_id)
    if not rows:
        return None
    flags = rows[0]["flags"]
    return (json.loads(flags) if isinstance(flags, str) else flags).get(name)


async def test_a_kind_the_shop_turned_off_is_not_applicable_and_never_reaches_the_smtp_server(stack, recorder):
    shop = _shop("mail-off")
    await _settings(stack, shop, disabled=[MailKind.ORDER_CONFIRMATION, *DEFAULT_OFF])
    order, order_id = _order(920_001, shop)
    await _submit(stack, order)

    [event] = await recorder.wait_for(topics.NOTIFY_EVENTS, type="MailNotApplicable", order_id=order_id, mail_kind="order_confirmation")
    assert event.json()["reason"] == "turned off"
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    [shipped] = await eventually(lambda: _mails_to(stack, order.customer.email), timeout=10)
    assert shipped["Subject"].startswith("【発送のお知らせ】")
    assert recorder.on(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id, mail_kind="order_confirmation") == []
    assert await _flag(stack, order_id, "mail_order_confirmation") == "not_applicable"


async def test_a_shop_on_iso_2022_jp_gets_iso_2022_jp_parts_and_a_mail_it_cannot_carry_goes_as_utf_8(stack, recorder):
    shop = _shop("mail-jis")
    await _settings(stack, shop, encoding="iso-2022-jp")
    plain, plain_id = _order(920_002, shop, name="山田 花子")
    beyond, beyond_id = _order(920_003, shop, name="髙橋 花子")  # 髙 is outside JIS X 0208
    await asyncio.gather(_submit(stack, plain), _submit(stack, beyond))
    for order_id in (plain_id, beyond_id):
        await recorder.wait_for(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id, mail_kind="order_confirmation", timeout=90)

    # The order ships at once and its shipped mail names the order number too: pick the confirmations.
    [jis] = await eventually(lambda: _mails_about(stack, plain, "【ご注文確認】"), timeout=10)
    [utf8] = await eventually(lambda: _mails_about(stack, beyond, "【ご注文確認】"), timeout=10)
    for part in (jis.get_body(("plain",)), jis.get_body(("html",))):
        assert part.get_content_charset() == "iso-2022-jp"
    assert "山田 花子 様" in jis.get_body(("plain",)).get_content() and "京都茶舗" in jis.get_body(("plain",)).get_content()
    assert jis["Subject"] == f"【ご注文確認】ご注文番号 {plain.external_order_no}"
    for part in (utf8.get_body(("plain",)), utf8.get_body(("html",))):
        assert part.get_content_charset() == "utf-8"
    assert "髙橋 花子 様" in utf8.get_body(("plain",)).get_content()
    for order in (plain, beyond):
        delivered = [mail["Message-ID"] for mail in _mails_to(stack, order.customer.email)]
        assert len(delivered) == len(set(delivered)), delivered  # no mail twice


def _edit(order: ShopOrderSubmitted, order_id, *, edit_no: int, quantity: int, notify_customer: bool, balance: int) -> OrderEdited:
    """The order's one line at `quantity` units (0: returned, kept on record)."""
    [was] = order.deliveries[0].lines
    line = was.model_copy(update={"quantity": quantity})
    merchandise = line.unit_price * quantity
    charges = order.charges.model_copy(update={"total": merchandise + order.charges.shipping_fee})
    return OrderEdited(
        order_id=order_id, shop_id=order.shop_id, edit_no=edit_no, external_order_no=order.external_order_no,
        customer=order.customer, currency=order.currency, payment=order.payment,
        changes=[LineDiff(
            delivery_index=0, sku=line.sku, change="returned" if quantity == 0 else "changed", previous_quantity=was.quantity,
            quantity=quantity, unit_price=line.unit_price, previous_line_discount=0, line_discount=0,
        )],
        deliveries=[order.deliveries[0].model_copy(update={"lines": [line]})],
        previous_charges=order.charges, charges=charges, merchandise_total=merchandise,
        paid=0, balance=balance, adjust_stock=False, notify_customer=notify_customer, reason="お客様のご依頼",
        edited_by="staff:e2e",
    )


async def _publish(stack, event: OrderEdited) -> None:
    await publish_raw(stack.bootstrap, topics.ORDERS_EVENTS, event.model_dump_json().encode(), event.kafka_key().encode())


def _change_mails(stack, address: str) -> list:
    return [mail for mail in _mails_to(stack, address) if "ご注文内容変更" in mail["Subject"]]


async def test_each_edit_staff_chose_to_mail_arrives_once_with_the_new_lines_and_totals_and_a_redelivered_one_not_again(stack, recorder):
    order, order_id = _order(920_004, _shop("mail-edit"), sku=f"NOSTOCK-{uuid.uuid4().hex[:8]}")
    await _submit(stack, order)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=order_id, allocation="none", timeout=90)
    await recorder.wait_for(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id, mail_kind="order_confirmation", timeout=60)
    [line] = order.deliveries[0].lines

    more = _edit(order, order_id, edit_no=1, quantity=line.quantity + 2, notify_customer=True, balance=2 * line.unit_price)
    returned = _edit(order, order_id, edit_no=2, quantity=0, notify_customer=True, balance=-line.unit_price * line.quantity)
    quiet = _edit(order, order_id, edit_no=3, quantity=1, notify_customer=False, balance=0)
    for event in (more, more, returned, quiet):  # `more` twice: Kafka redelivering it
        await _publish(stack, event)
    await eventually(lambda: fetch(stack.service_dsns["notify"], "SELECT 1 FROM inbox WHERE message_id = $1", quiet.event_id), timeout=60)

    first, second = _change_mails(stack, order.customer.email)
    text = first.get_body(("plain",)).get_content()
    assert first["Subject"] == f"【ご注文内容変更】ご注文番号 {order.external_order_no}"
    assert f"- {line.name}: {line.quantity} → {line.quantity + 2}" in text
    assert f"- {line.name} × {line.quantity + 2}  {line.unit_price * (line.quantity + 2):,}円" in text
    assert f"変更後のお支払い合計: {more.charges.total:,}円" in text and f"追加のお支払い: {2 * line.unit_price:,}円" in text
    assert f"送料: {order.charges.shipping_fee:,}円" in text
    second_text = second.get_body(("plain",)).get_content()
    assert f"- {line.name}  返品" in second_text and f"ご返金予定額: {line.unit_price * line.quantity:,}円" in second_text
    assert second.get_body(("html",)) is not None

    # A mail reaches the SMTP sink before its MailSent leaves the outbox: wait for both events, then check there are no more.
    await recorder.wait_for(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id, mail_kind="order_changed", count=2, timeout=30)
    sent = recorder.on(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id, mail_kind="order_changed")
    assert sorted(m.json()["causation_id"] for m in sent) == sorted([str(more.event_id), str(returned.event_id)])
    rows = await fetch(
        stack.service_dsns["notify"], "SELECT cause_id, status, attempts FROM mail_log WHERE order_id = $1 AND kind = 'order_changed'", order_id
    )
    assert sorted((str(r["cause_id"]), r["status"], r["attempts"]) for r in rows) == sorted(
        [(str(more.event_id), "sent", 1), (str(returned.event_id), "sent", 1)]
    )
    assert recorder.on(topics.NOTIFY_EVENTS, causation_id=quiet.event_id) == []
    assert await eventually(lambda: _is(stack, order_id, "mail_order_changed", "sent"), timeout=30)


async def _is(stack, order_id, flag: str, value: str) -> bool:
    return await _flag(stack, order_id, flag) == value
