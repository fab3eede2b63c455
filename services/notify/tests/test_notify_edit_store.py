"""OrderEdited through notify's handler on a real PostgreSQL: the order-changed mail goes out once per edit when staff
chose to tell the customer, never for a redelivered edit, nothing at all without that choice, and later mails show the
order as edited."""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import pytest
from ordermesh_contracts import LineDiff, OrderAccepted, OrderEdited, SaveMailTemplate, ShipmentShipped, topics
from ordermesh_notify import store
from ordermesh_notify.adapters.smtp import OutgoingMail
from ordermesh_notify.domain.templates import MailRenderer
from ordermesh_notify.handlers import NotifyHandlers
from ordermesh_notify.mailing import Mailer
from ordermesh_notify.staff import StaffCommands
from ordermesh_servicekit.parking import DependencyMissing
from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext, PermanentError, TransientError

GOLDEN = Path(__file__).resolve().parents[3] / "contracts" / "tests" / "golden"


class RecordingTransport:
    def __init__(self) -> None:
        self.accepted: list[OutgoingMail] = []

    async def send(self, mail: OutgoingMail) -> None:
        self.accepted.append(mail)


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def mailer(transport) -> Mailer:
    return Mailer(MailRenderer(), transport, sender="shop@ordermesh.example", mail_domain="ordermesh.example")


async def deliver(pool, handler, message) -> None:
    try:
        await handler(message, MessageContext(pool, message.event_id, topics.ORDERS_EVENTS, log=None))
    except DuplicateMessage:
        pass


def accepted_order() -> OrderAccepted:
    order = OrderAccepted.model_validate(json.loads((GOLDEN / "OrderAccepted.json").read_text("utf-8")))
    return order.model_copy(update={"event_id": uuid4(), "order_id": uuid4()})


def edited(order: OrderAccepted, *, edit_no: int, matcha: int, bowl: int | None, notify_customer: bool, balance: int = 0) -> OrderEdited:
    """The order with matcha at `matcha` units and the tea bowl at `bowl` units (None: the line removed)."""
    base = OrderEdited.model_validate(json.loads((GOLDEN / "OrderEdited.json").read_text("utf-8")))
    was_matcha, was_bowl = order.deliveries[0].lines
    lines = [was_matcha.model_copy(update={"quantity": matcha})]
    if bowl is not None:
        lines.append(was_bowl.model_copy(update={"quantity": bowl}))
    diffs = [
        LineDiff(delivery_index=0, sku=was_matcha.sku, change="changed", previous_quantity=was_matcha.quantity, quantity=matcha,
                 unit_price=was_matcha.unit_price, previous_line_discount=was_matcha.line_discount, line_discount=was_matcha.line_discount),
        LineDiff(delivery_index=0, sku=was_bowl.sku, change="removed" if bowl is None else "changed", previous_quantity=1,
                 quantity=bowl or 0, unit_price=was_bowl.unit_price, previous_line_discount=0, line_discount=0),
    ]
    merchandise = sum(line.unit_price * line.quantity - line.line_discount for line in lines)
    charges = order.charges.model_copy(
        update={"total": merchandise + order.charges.shipping_fee - order.charges.order_discount - order.charges.points_used}
    )
    return base.model_copy(update={
        "event_id": uuid4(), "order_id": order.order_id, "shop_id": order.shop_id, "edit_no": edit_no,
        "external_order_no": order.external_order_no, "customer": order.customer, "changes": diffs,
        "deliveries": [order.deliveries[0].model_copy(update={"lines": lines})], "previous_charges": order.charges,
        "charges": charges, "merchandise_total": merchandise, "balance": balance, "paid": max(charges.total - balance, 0),
        "notify_customer": notify_customer, "occurred_at": datetime.now(timezone.utc),
    })


async def notify_events(pool, order_id, kind: str) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.NOTIFY_EVENTS)
    events = [json.loads(row["payload"]) for row in rows]
    return [e for e in events if e["order_id"] == str(order_id) and e["mail_kind"] == kind]


def changed_mails(transport) -> list[OutgoingMail]:
    return [m for m in transport.accepted if "ご注文内容変更" in m.subject]


async def test_each_edit_staff_chose_to_tell_the_customer_about_is_mailed_once_and_a_redelivered_edit_not_again(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    await deliver(pool, handlers.on_order_accepted, order)
    first = edited(order, edit_no=1, matcha=3, bowl=1, notify_customer=True, balance=2160)
    second = edited(order, edit_no=2, matcha=1, bowl=1, notify_customer=True, balance=-2160)
    for event in (first, first, second, first, second):
        await deliver(pool, handlers.on_order_edited, event)

    one, two = changed_mails(transport)
    assert one.recipient == order.customer.email and one.message_id != two.message_id
    assert "- 宇治抹茶 特上 40g: 2 → 3" in one.text and "- 宇治抹茶 特上 40g × 3  6,280円" in one.text
    assert f"変更後のお支払い合計: {first.charges.total:,}円" in one.text and "追加のお支払い: 2,160円" in one.text
    assert "- 宇治抹茶 特上 40g × 1  1,960円" in two.text and "ご返金予定額: 2,160円" in two.text
    events = await notify_events(pool, order.order_id, "order_changed")
    assert [(e["type"], e["causation_id"]) for e in events] == [("MailSent", str(first.event_id)), ("MailSent", str(second.event_id))]
    rows = await pool.fetch(
        "SELECT cause_id, status, attempts FROM mail_log WHERE order_id = $1 AND kind = 'order_changed' ORDER BY created_at", order.order_id
    )
    assert [(r["cause_id"], r["status"], r["attempts"]) for r in rows] == [(first.event_id, "sent", 1), (second.event_id, "sent", 1)]


async def test_an_edit_without_the_mail_choice_mails_and_announces_nothing_yet_the_shipped_mail_shows_the_edited_lines(pool, mailer, transport) -> None:
    handlers, staff, order = NotifyHandlers(mailer), StaffCommands(mailer), accepted_order()
    template = SaveMailTemplate(
        shop_id=order.shop_id, issued_by="t", mail_kind="shipped", subject="発送 {{ external_order_no }}",
        text="{% for line in lines %}{{ line.name }} × {{ line.quantity }}\n{% endfor %}合計 {{ total }}円 送料 {{ shipping_fee }}円\n",
    )
    await staff.save_template(template, MessageContext(pool, template.event_id, topics.NOTIFY_COMMANDS, log=None))
    await deliver(pool, handlers.on_order_accepted, order)
    edit = edited(order, edit_no=1, matcha=5, bowl=None, notify_customer=False)
    await deliver(pool, handlers.on_order_edited, edit)

    assert changed_mails(transport) == []
    assert await notify_events(pool, order.order_id, "order_changed") == []
    assert await pool.fetch("SELECT 1 FROM mail_log WHERE order_id = $1 AND kind = 'order_changed'", order.order_id) == []
    assert await pool.fetchval("SELECT true FROM inbox WHERE message_id = $1", edit.event_id)

    raw = json.loads((GOLDEN / "ShipmentShipped.json").read_text("utf-8"))
    shipped = ShipmentShipped.model_validate({**raw, "event_id": str(uuid4()), "order_id": str(order.order_id), "shop_id": order.shop_id})
    await deliver(pool, handlers.on_shipment_shipped, shipped)
    assert transport.accepted[-1].text.startswith(f"宇治抹茶 特上 40g × 5\n合計 {edit.charges.total}円 送料 660円\n")


async def test_an_edit_whose_mail_the_shop_turned_off_is_kept_and_announced_not_applicable(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    async with pool.acquire() as conn:
        await store.save_shop_settings(
            conn, shop_id=order.shop_id, language="ja", signature="s", encoding="utf-8", disabled_kinds=["order_changed"],
            updated_by="t",
        )
    await deliver(pool, handlers.on_order_accepted, order)
    edit = edited(order, edit_no=1, matcha=5, bowl=None, notify_customer=True)
    await deliver(pool, handlers.on_order_edited, edit)

    assert changed_mails(transport) == []
    assert [(e["type"], e["reason"]) for e in await notify_events(pool, order.order_id, "order_changed")] == [
        ("MailNotApplicable", "turned off"),
    ]
    assert (await store.contact(pool, order.order_id))["summary"]["edit_no"] == 1


async def test_an_older_edit_redelivered_after_a_newer_one_leaves_the_newer_lines_and_a_removed_line_keeps_its_name(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    await deliver(pool, handlers.on_order_accepted, order)
    first = edited(order, edit_no=1, matcha=3, bowl=1, notify_customer=False)
    second = edited(order, edit_no=2, matcha=4, bowl=None, notify_customer=True)
    await deliver(pool, handlers.on_order_edited, first)
    await deliver(pool, handlers.on_order_edited, second)
    stale = first.model_copy(update={"event_id": uuid4()})  # the same edit, re-published under a new id
    await deliver(pool, handlers.on_order_edited, stale)

    summary = json.loads(await pool.fetchval("SELECT summary FROM contacts WHERE order_id = $1", order.order_id))
    assert (summary["edit_no"], [(line["sku"], line["quantity"]) for line in summary["lines"]]) == (2, [("MATCHA-UJI-40G", 4)])
    [mail] = changed_mails(transport)
    assert "- 清水焼 抹茶碗: 1 → 0" in mail.text and "清水焼 抹茶碗 ×" not in mail.text


async def test_an_edit_of_an_order_notify_does_not_know_yet_is_parked_until_the_order_arrives(pool, mailer) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    recent = edited(order, edit_no=1, matcha=3, bowl=1, notify_customer=True)
    with pytest.raises(DependencyMissing):
        await deliver(pool, handlers.on_order_edited, recent)
