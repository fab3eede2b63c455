"""Notify's handlers and store on a real PostgreSQL with a recording mail transport: once per cause, every failure named."""

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from ordermesh_contracts import (
    Device,
    MailKind,
    OrderAccepted,
    PaymentRequested,
    PointsConfirmed,
    ResendMail,
    SaveMailTemplate,
    SendBulkMail,
    SetOrderMailText,
    ShipmentShipped,
    topics,
)
from ordermesh_notify import store
from ordermesh_notify.adapters.smtp import MailDeferred, MailRefused, OutgoingMail
from ordermesh_notify.domain.templates import MailRenderer
from ordermesh_notify.handlers import NotifyHandlers
from ordermesh_notify.mailing import Mailer
from ordermesh_notify.staff import StaffCommands
from ordermesh_servicekit.commands import CommandRefused
from ordermesh_servicekit.consuming import MessageContext, TransientError

GOLDEN = Path(__file__).resolve().parents[3] / "contracts" / "tests" / "golden"


class CrashAfterSend(Exception):
    """Stands for the process dying after the SMTP server accepted the mail."""


class RecordingTransport:
    """A mail server stand-in: keeps every mail it accepts; can refuse, defer, be down, or crash after accepting."""

    def __init__(self) -> None:
        self.accepted: list[OutgoingMail] = []
        self.failure: Exception | None = None
        self.crash_after_send = False

    async def send(self, mail: OutgoingMail) -> None:
        if self.failure:
            raise self.failure
        self.accepted.append(mail)
        if self.crash_after_send:
            self.crash_after_send = False
            raise CrashAfterSend()


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def mailer(transport) -> Mailer:
    return Mailer(MailRenderer(), transport, sender="shop@ordermesh.example", mail_domain="ordermesh.example", max_deferrals=3)


def ctx(pool, message) -> MessageContext:
    return MessageContext(pool, message.event_id, "test", log=None)


def accepted_order(**customer) -> OrderAccepted:
    order = OrderAccepted.model_validate(json.loads((GOLDEN / "OrderAccepted.json").read_text("utf-8")))
    return order.model_copy(update={"event_id": uuid4(), "order_id": uuid4(), "customer": order.customer.model_copy(update=customer)})


def shipped(order: OrderAccepted) -> ShipmentShipped:
    raw = json.loads((GOLDEN / "ShipmentShipped.json").read_text("utf-8"))
    return ShipmentShipped.model_validate({**raw, "event_id": str(uuid4()), "order_id": str(order.order_id), "shop_id": order.shop_id})


async def published(pool, order_id) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.NOTIFY_EVENTS)
    events = [json.loads(row["payload"]) for row in rows]
    return [e for e in events if e["order_id"] == str(order_id)]


async def log_row(pool, order_id, kind: str):
    return await pool.fetchrow("SELECT * FROM mail_log WHERE order_id = $1 AND kind = $2", order_id, kind)


async def test_the_same_order_accepted_delivered_twice_sends_one_confirmation(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    await handlers.on_order_accepted(order, ctx(pool, order))
    await handlers.on_order_accepted(order, ctx(pool, order))
    assert len(transport.accepted) == 1
    assert [(e["type"], e["mail_kind"]) for e in await published(pool, order.order_id)] == [("MailSent", "order_confirmation")]
    row = await log_row(pool, order.order_id, "order_confirmation")
    assert (row["status"], row["attempts"]) == ("sent", 1)
    assert transport.accepted[0].html and "<html" in transport.accepted[0].html


async def test_a_crash_between_send_and_record_resends_exactly_once_on_redelivery_and_never_again(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    transport.crash_after_send = True
    with pytest.raises(CrashAfterSend):
        await handlers.on_order_accepted(order, ctx(pool, order))
    row = await log_row(pool, order.order_id, "order_confirmation")
    assert (row["status"], row["attempts"]) == ("sending", 1)
    assert await published(pool, order.order_id) == []

    await handlers.on_order_accepted(order, ctx(pool, order))  # Kafka redelivers the uncommitted message
    await handlers.on_order_accepted(order, ctx(pool, order))  # and once more, after it was recorded
    assert len(transport.accepted) == 2
    assert transport.accepted[0].message_id == transport.accepted[1].message_id
    row = await log_row(pool, order.order_id, "order_confirmation")
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert [e["type"] for e in await published(pool, order.order_id)] == ["MailSent"]


async def test_a_second_replica_waits_while_a_mail_is_claimed_by_the_first_and_sends_it_once_after_the_claim_expired(
    pool, transport
) -> None:
    first = Mailer(MailRenderer(), transport, sender="shop@ordermesh.example", mail_domain="ordermesh.example", owner="notify-1")
    second = Mailer(MailRenderer(), transport, sender="shop@ordermesh.example", mail_domain="ordermesh.example", owner="notify-2")
    order = accepted_order()
    transport.crash_after_send = True
    with pytest.raises(CrashAfterSend):  # the first replica dies after the server accepted the mail
        await NotifyHandlers(first).on_order_accepted(order, ctx(pool, order))
    row = await log_row(pool, order.order_id, "order_confirmation")
    assert (row["status"], row["claimed_by"]) == ("sending", "notify-1")

    # A rebalance hands the cause to the second replica while the first's claim is live: it waits, sends nothing.
    with pytest.raises(TransientError, match="being sent by notify-1"):
        await NotifyHandlers(second).on_order_accepted(order, ctx(pool, order))
    assert len(transport.accepted) == 1

    await pool.execute("UPDATE mail_log SET claimed_until = now() - interval '1 second' WHERE order_id = $1", order.order_id)
    await NotifyHandlers(second).on_order_accepted(order, ctx(pool, order))
    await NotifyHandlers(first).on_order_accepted(order, ctx(pool, order))
    assert len(transport.accepted) == 2
    assert transport.accepted[0].message_id == transport.accepted[1].message_id
    row = await log_row(pool, order.order_id, "order_confirmation")
    assert (row["status"], row["attempts"], row["claimed_until"]) == ("sent", 2, None)
    assert [e["type"] for e in await published(pool, order.order_id)] == ["MailSent"]


async def test_a_mail_whose_smtp_exchange_outlasts_half_its_claim_is_retried_not_left_to_a_second_sender(pool) -> None:
    class Hanging:
        async def send(self, mail: OutgoingMail) -> None:
            await asyncio.sleep(30)

    mailer = Mailer(MailRenderer(), Hanging(), sender="s@ordermesh.example", mail_domain="ordermesh.example", claim_seconds=2)
    order = accepted_order()
    with pytest.raises(TransientError, match="longer than 1 s"):
        await NotifyHandlers(mailer).on_order_accepted(order, ctx(pool, order))
    row = await pool.fetchrow(
        "SELECT status, claimed_until > now() AS live FROM mail_log WHERE order_id = $1", order.order_id
    )
    assert (row["status"], row["live"]) == ("sending", True)


async def test_a_recipient_refused_with_550_ends_as_mail_failed_with_the_reason_after_one_attempt(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order(email="reject-me@example.com")
    transport.failure = MailRefused("550 5.1.1 mailbox unavailable")
    await handlers.on_order_accepted(order, ctx(pool, order))
    await handlers.on_order_accepted(order, ctx(pool, order))
    [event] = await published(pool, order.order_id)
    assert (event["type"], event["reason"]) == ("MailFailed", "550 5.1.1 mailbox unavailable")
    row = await log_row(pool, order.order_id, "order_confirmation")
    assert (row["status"], row["attempts"], row["reason"]) == ("failed", 1, "550 5.1.1 mailbox unavailable")


async def test_an_order_without_an_address_gets_mail_not_applicable_and_no_mail(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order(email=None)
    await handlers.on_order_accepted(order, ctx(pool, order))
    [event] = await published(pool, order.order_id)
    assert (event["type"], event["reason"]) == ("MailNotApplicable", "no e-mail address")
    assert transport.accepted == []


async def test_an_invalid_address_kept_for_an_order_ends_as_mail_failed_with_a_clear_reason(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    async with pool.acquire() as conn:
        await conn.execute(  # a contact kept with an address no mail can reach
            "INSERT INTO contacts (order_id, shop_id, external_order_no, email, name, device, summary, mail_texts)"
            " VALUES ($1, $2, 'X1', 'hanako@@example', '山田 花子', 'pc', '{\"lines\": [], \"total\": 0}', '{}')",
            order.order_id, order.shop_id,
        )
    event = shipped(order)
    await handlers.on_shipment_shipped(event, ctx(pool, event))
    [failed] = await published(pool, order.order_id)
    assert (failed["type"], failed["mail_kind"]) == ("MailFailed", "shipped")
    assert failed["reason"] == "invalid address: not of the form name@domain"
    assert transport.accepted == []


async def test_a_template_variable_missing_when_the_mail_is_due_ends_as_mail_failed_naming_it(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    await handlers.on_order_accepted(order, ctx(pool, order))
    async with pool.acquire() as conn:  # an old template stored before templates were checked
        await store.save_template(
            conn, shop_id=order.shop_id, kind="shipped", device="any", subject="発送", text="{{ parcel_no }}", html=None, updated_by="t"
        )
    event = shipped(order)
    await handlers.on_shipment_shipped(event, ctx(pool, event))
    failed = (await published(pool, order.order_id))[-1]
    assert (failed["type"], failed["reason"]) == ("MailFailed", "template variable missing: 'parcel_no' is undefined")
    assert len(transport.accepted) == 1


async def test_a_kind_the_shop_turned_off_ends_as_not_applicable_turned_off(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    await handlers.on_order_accepted(order, ctx(pool, order))
    async with pool.acquire() as conn:
        await store.save_shop_settings(
            conn, shop_id=order.shop_id, language="ja", signature="京都茶舗", encoding="utf-8", disabled_kinds=["shipped"], updated_by="t"
        )
    event = shipped(order)
    await handlers.on_shipment_shipped(event, ctx(pool, event))
    last = (await published(pool, order.order_id))[-1]
    assert (last["type"], last["mail_kind"], last["reason"]) == ("MailNotApplicable", "shipped", "turned off")
    assert len(transport.accepted) == 1


async def test_while_the_server_is_down_the_mail_waits_counting_attempts_and_goes_out_once_when_it_is_back(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    transport.failure = TransientError("SMTP unavailable: ConnectionRefusedError")
    for _ in range(3):
        with pytest.raises(TransientError):
            await handlers.on_order_accepted(order, ctx(pool, order))
    transport.failure = None
    await handlers.on_order_accepted(order, ctx(pool, order))
    await handlers.on_order_accepted(order, ctx(pool, order))
    assert len(transport.accepted) == 1
    row = await log_row(pool, order.order_id, "order_confirmation")
    assert (row["status"], row["attempts"]) == ("sent", 4)
    assert [e["type"] for e in await published(pool, order.order_id)] == ["MailSent"]


async def test_the_contact_is_kept_with_the_confirmations_claim_so_later_mails_find_the_order_while_it_waits(
    pool, mailer, transport
) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    transport.failure = TransientError("SMTP unavailable: ConnectionRefusedError")
    with pytest.raises(TransientError):
        await handlers.on_order_accepted(order, ctx(pool, order))
    assert (await store.contact(pool, order.order_id))["external_order_no"] == order.external_order_no
    row = await log_row(pool, order.order_id, "order_confirmation")
    assert (row["status"], row["attempts"], row["subject"]) == ("sending", 1, None)  # the content comes with the outcome

    transport.failure = None
    event = shipped(order)
    await handlers.on_shipment_shipped(event, ctx(pool, event))
    await handlers.on_order_accepted(order, ctx(pool, order))
    assert len(transport.accepted) == 2
    rows = await pool.fetch("SELECT kind, status, attempts, subject IS NOT NULL AS kept FROM mail_log WHERE order_id = $1", order.order_id)
    assert sorted(tuple(r) for r in rows) == [("order_confirmation", "sent", 2, True), ("shipped", "sent", 1, True)]


async def test_a_mail_that_does_not_apply_is_recorded_without_counting_an_attempt(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    await handlers.on_order_accepted(order, ctx(pool, order))
    confirmed = PointsConfirmed(order_id=order.order_id, shop_id=order.shop_id, customer_id="C1", points=46)
    await handlers.on_points_confirmed(confirmed, ctx(pool, confirmed))
    row = await log_row(pool, order.order_id, "points_confirmed")
    assert (row["status"], row["attempts"], row["reason"], row["claimed_until"]) == ("not_applicable", 0, "turned off", None)
    assert len(transport.accepted) == 1


async def test_a_kind_turned_off_is_settled_by_its_claim_once_with_the_inbox_row_and_event_even_after_a_claim_left_sending(
    pool, mailer, transport
) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    settings = {"shop_id": order.shop_id, "language": "ja", "signature": "s", "encoding": "utf-8", "updated_by": "t"}
    async with pool.acquire() as conn:
        await store.save_shop_settings(conn, **settings, disabled_kinds=[])
    await handlers.on_order_accepted(order, ctx(pool, order))
    confirmed = PointsConfirmed(order_id=order.order_id, shop_id=order.shop_id, customer_id="C1", points=46)
    transport.failure = TransientError("SMTP unavailable: ConnectionRefusedError")
    with pytest.raises(TransientError):
        await handlers.on_points_confirmed(confirmed, ctx(pool, confirmed))
    assert (await log_row(pool, order.order_id, "points_confirmed"))["status"] == "sending"
    async with pool.acquire() as conn:
        await store.save_shop_settings(conn, **settings, disabled_kinds=["points_confirmed"])
    async with pool.acquire() as conn:
        claim = await mailer.claim(
            conn, order_id=order.order_id, kind=MailKind.POINTS_CONFIRMED, cause_id=confirmed.event_id,
            seen_id=confirmed.event_id, cause=confirmed, topic="test",
        )
    assert claim is not None and claim.settled
    await handlers.on_points_confirmed(confirmed, ctx(pool, confirmed))  # redelivered: the inbox holds it
    row = await log_row(pool, order.order_id, "points_confirmed")
    assert (row["status"], row["reason"], row["attempts"], row["claimed_until"]) == ("not_applicable", "turned off", 1, None)
    assert [(e["type"], e["mail_kind"]) for e in await published(pool, order.order_id)] == [
        ("MailSent", "order_confirmation"), ("MailNotApplicable", "points_confirmed"),
    ]
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE message_id = $1", confirmed.event_id) == 1
    assert len(transport.accepted) == 1


async def test_a_kind_off_by_default_that_the_shop_turned_on_is_sent(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    async with pool.acquire() as conn:
        await store.save_shop_settings(
            conn, shop_id=order.shop_id, language="ja", signature="s", encoding="utf-8", disabled_kinds=[], updated_by="t"
        )
    await handlers.on_order_accepted(order, ctx(pool, order))
    confirmed = PointsConfirmed(order_id=order.order_id, shop_id=order.shop_id, customer_id="C1", points=46)
    await handlers.on_points_confirmed(confirmed, ctx(pool, confirmed))
    assert [e["type"] for e in await published(pool, order.order_id)] == ["MailSent", "MailSent"]
    assert len(transport.accepted) == 2


async def test_a_recipient_the_server_keeps_deferring_fails_after_the_limit_instead_of_holding_other_orders(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    transport.failure = MailDeferred("452 4.2.2 mailbox full")
    for _ in range(2):
        with pytest.raises(TransientError):
            await handlers.on_order_accepted(order, ctx(pool, order))
    await handlers.on_order_accepted(order, ctx(pool, order))
    [failed] = await published(pool, order.order_id)
    assert failed["reason"] == "deferred 3 times, gave up: 452 4.2.2 mailbox full"


async def test_payment_instructions_carry_the_reference_amount_and_due_date(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    await handlers.on_order_accepted(order, ctx(pool, order))
    raw = json.loads((GOLDEN / "PaymentRequested.json").read_text("utf-8"))
    requested = PaymentRequested.model_validate({**raw, "order_id": str(order.order_id), "shop_id": order.shop_id})
    await handlers.on_payment_requested(requested, ctx(pool, requested))
    mail = transport.accepted[-1]
    assert mail.subject.startswith("【お支払いのご案内】")
    assert requested.reference in mail.text and f"{requested.amount:,}円" in mail.text and requested.due_date.isoformat() in mail.text


async def test_points_confirmed_with_zero_points_sends_nothing_and_with_points_follows_the_shop_setting(pool, mailer, transport) -> None:
    handlers, order = NotifyHandlers(mailer), accepted_order()
    await handlers.on_order_accepted(order, ctx(pool, order))
    base = dict(order_id=order.order_id, shop_id=order.shop_id, customer_id="C1")
    zero, some = PointsConfirmed(**base, points=0), PointsConfirmed(**base, points=46)
    await handlers.on_points_confirmed(zero, ctx(pool, zero))
    await handlers.on_points_confirmed(some, ctx(pool, some))
    assert [(e["mail_kind"], e["type"]) for e in await published(pool, order.order_id)][1:] == [("points_confirmed", "MailNotApplicable")]
    async with pool.acquire() as conn:
        await store.save_shop_settings(conn, shop_id=order.shop_id, language="en", signature="Kyoto Tea", encoding="utf-8", disabled_kinds=[], updated_by="t")
    again = PointsConfirmed(**base, points=46)
    await handlers.on_points_confirmed(again, ctx(pool, again))
    assert transport.accepted[-1].subject.startswith("Points confirmed") and "Points confirmed: 46" in transport.accepted[-1].text
    assert transport.accepted[-1].text.endswith("Kyoto Tea\n")


async def test_a_template_that_does_not_render_is_refused_at_save_and_a_good_one_is_used_for_its_device_only(pool, mailer, transport) -> None:
    staff, handlers = StaffCommands(mailer), NotifyHandlers(mailer)
    bad = SaveMailTemplate(shop_id="kyoto-tea", issued_by="t", mail_kind=MailKind.SHIPPED, device="mobile", subject="x", text="{{ parcel_no }} {% if %}")
    with pytest.raises(CommandRefused) as refused:
        await staff.save_template(bad, ctx(pool, bad))
    assert refused.value.reasons[0].startswith("template syntax error on line 1")
    good = SaveMailTemplate(
        shop_id="kyoto-tea", issued_by="t", mail_kind=MailKind.SHIPPED, device="mobile",
        subject="📦 {{ external_order_no }}", text="追跡 {{ tracking_number }}",
    )
    await staff.save_template(good, ctx(pool, good))
    mobile, pc = accepted_order(device=Device.MOBILE), accepted_order(device=Device.PC)
    for order in (mobile, pc):
        await handlers.on_order_accepted(order, ctx(pool, order))
        event = shipped(order)
        await handlers.on_shipment_shipped(event, ctx(pool, event))
    by_order = {m.subject for m in transport.accepted if "📦" in m.subject or "発送" in m.subject}
    assert f"📦 {mobile.external_order_no}" in by_order and f"【発送のお知らせ】ご注文番号 {pc.external_order_no}" in by_order


async def test_old_mail_bodies_are_purged_and_the_log_rows_stay(pool, mailer, transport) -> None:
    handlers = NotifyHandlers(mailer)
    old, new = accepted_order(), accepted_order()
    for order in (old, new):
        await handlers.on_order_accepted(order, ctx(pool, order))
    await pool.execute("UPDATE mail_log SET created_at = now() - interval '91 days' WHERE order_id = $1", old.order_id)
    async with pool.acquire() as conn:
        assert await store.purge_bodies(conn, timedelta(days=90)) == 1
        assert await store.purge_bodies(conn, timedelta(days=90)) == 0
    old_row, new_row = await log_row(pool, old.order_id, "order_confirmation"), await log_row(pool, new.order_id, "order_confirmation")
    assert (old_row["body"], old_row["html"], old_row["variables"], old_row["status"]) == (None, None, None, "sent")
    assert old_row["subject"] and new_row["body"] and new_row["html"]


async def replies(pool) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.OPS_REPLIES)
    return [json.loads(row["payload"]) for row in rows]


async def test_a_resend_mails_the_same_content_again_as_a_new_mail_and_only_once_per_command(pool, mailer, transport) -> None:
    handlers, staff, order = NotifyHandlers(mailer), StaffCommands(mailer), accepted_order()
    await handlers.on_order_accepted(order, ctx(pool, order))
    original = await log_row(pool, order.order_id, "order_confirmation")
    command = ResendMail(shop_id=order.shop_id, issued_by="staff:sato", order_id=order.order_id, mail_id=original["mail_id"])
    await staff.resend(command, ctx(pool, command))
    await staff.resend(command, ctx(pool, command))
    assert len(transport.accepted) == 2
    first, again = transport.accepted
    assert (again.subject, again.text, again.html) == (first.subject, first.text, first.html)
    assert again.message_id != first.message_id
    [reply] = await replies(pool)
    assert reply["type"] == "CommandAccepted" and reply["results"] == [{"item": str(order.order_id), "ok": True, "reason": None}]
    rows = await pool.fetch("SELECT cause_id FROM mail_log WHERE order_id = $1 ORDER BY created_at", order.order_id)
    assert [r["cause_id"] for r in rows] == [order.event_id, command.event_id]


async def test_a_bulk_mail_reports_one_result_per_order_including_unknown_and_refused_ones(pool, mailer, transport) -> None:
    handlers, staff = NotifyHandlers(mailer), StaffCommands(mailer)
    good, refused = accepted_order(), accepted_order(email="reject@example.com")
    for order in (good, refused):
        await handlers.on_order_accepted(order, ctx(pool, order))
    unknown = uuid4()
    transport.accepted.clear()

    original_send = transport.send

    async def send(mail):
        if mail.recipient.startswith("reject"):
            raise MailRefused("550 5.1.1 mailbox unavailable")
        await original_send(mail)

    transport.send = send
    command = SendBulkMail(
        shop_id=good.shop_id, issued_by="staff:sato", mail_kind=MailKind.MESSAGE_TO_CUSTOMER,
        order_ids=[good.order_id, refused.order_id, unknown], subject="配送遅延のお詫び", message="お届けが1日遅れます。",
    )
    await staff.send_bulk(command, ctx(pool, command))
    [reply] = await replies(pool)
    assert reply["results"] == [
        {"item": str(good.order_id), "ok": True, "reason": None},
        {"item": str(refused.order_id), "ok": False, "reason": "550 5.1.1 mailbox unavailable"},
        {"item": str(unknown), "ok": False, "reason": f"order {unknown} of shop {good.shop_id} is unknown to notify"},
    ]
    [mail] = transport.accepted
    assert "お届けが1日遅れます。" in mail.text and "配送遅延のお詫び" in mail.subject


async def test_per_order_text_set_by_staff_is_inserted_into_later_mails(pool, mailer, transport) -> None:
    handlers, staff, order = NotifyHandlers(mailer), StaffCommands(mailer), accepted_order()
    await handlers.on_order_accepted(order, ctx(pool, order))
    command = SetOrderMailText(shop_id=order.shop_id, issued_by="rule:noshi", order_id=order.order_id, text="のし紙をお付けしました。")
    await staff.set_order_text(command, ctx(pool, command))
    event = shipped(order)
    await handlers.on_shipment_shipped(event, ctx(pool, event))
    assert "のし紙をお付けしました。" in transport.accepted[-1].text and "のし紙" not in transport.accepted[0].text
