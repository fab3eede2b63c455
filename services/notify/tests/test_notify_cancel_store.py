"""OrderCancelled through notify's handler on a real PostgreSQL: the cancellation mail goes out once when staff chose
to tell the customer, its failure is named, and without that choice nothing is mailed or announced."""

import json
from pathlib import Path
from uuid import uuid4

import pytest
from ordermesh_contracts import OrderAccepted, OrderCancelled, topics
from ordermesh_notify.adapters.smtp import MailRefused, OutgoingMail
from ordermesh_notify.domain.templates import MailRenderer
from ordermesh_notify.handlers import NotifyHandlers
from ordermesh_notify.mailing import Mailer
from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext

GOLDEN = Path(__file__).resolve().parents[3] / "contracts" / "tests" / "golden"


class RecordingTransport:
    """A mail server stand-in that keeps what it accepts, or refuses."""

    def __init__(self) -> None:
        self.accepted: list[OutgoingMail] = []
        self.failure: Exception | None = None

    async def send(self, mail: OutgoingMail) -> None:
        if self.failure:
            raise self.failure
        self.accepted.append(mail)


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def handlers(transport) -> NotifyHandlers:
    return NotifyHandlers(Mailer(MailRenderer(), transport, sender="shop@ordermesh.example", mail_domain="ordermesh.example"))


async def deliver(pool, handler, message) -> None:
    try:
        await handler(message, MessageContext(pool, message.event_id, topics.ORDERS_EVENTS, log=None))
    except DuplicateMessage:
        pass


def accepted_order() -> OrderAccepted:
    order = OrderAccepted.model_validate(json.loads((GOLDEN / "OrderAccepted.json").read_text("utf-8")))
    return order.model_copy(update={"event_id": uuid4(), "order_id": uuid4()})


def cancelled(order: OrderAccepted, *, notify_customer: bool) -> OrderCancelled:
    return OrderCancelled(
        order_id=order.order_id, shop_id=order.shop_id, external_order_no=order.external_order_no,
        customer_id=order.customer.customer_id, reason="在庫切れのためキャンセル", restore_stock=True, cancel_payment=True,
        notify_customer=notify_customer, cancelled_by="staff:sato",
    )


async def cancellation_events(pool, order_id) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.NOTIFY_EVENTS)
    events = [json.loads(row["payload"]) for row in rows]
    return [e for e in events if e["order_id"] == str(order_id) and e["mail_kind"] == "order_cancelled"]


async def test_a_cancellation_staff_chose_to_tell_the_customer_about_is_mailed_once_with_the_order_number_and_reason(pool, handlers, transport) -> None:
    order = accepted_order()
    await deliver(pool, handlers.on_order_accepted, order)
    cancel = cancelled(order, notify_customer=True)
    await deliver(pool, handlers.on_order_cancelled, cancel)
    await deliver(pool, handlers.on_order_cancelled, cancel)

    [mail] = [m for m in transport.accepted if "キャンセル" in m.subject]
    assert order.external_order_no in mail.subject and mail.recipient == order.customer.email
    assert "在庫切れのためキャンセル" in mail.text and order.external_order_no in mail.text
    [event] = await cancellation_events(pool, order.order_id)
    assert event["type"] == "MailSent" and event["causation_id"] == str(cancel.event_id)
    [row] = await pool.fetch("SELECT status, attempts FROM mail_log WHERE order_id = $1 AND kind = 'order_cancelled'", order.order_id)
    assert (row["status"], row["attempts"]) == ("sent", 1)


async def test_a_cancellation_without_the_mail_choice_mails_and_announces_nothing_but_is_recorded_as_handled(pool, handlers, transport) -> None:
    order = accepted_order()
    await deliver(pool, handlers.on_order_accepted, order)
    cancel = cancelled(order, notify_customer=False)
    await deliver(pool, handlers.on_order_cancelled, cancel)

    assert [m for m in transport.accepted if "キャンセル" in m.subject] == []
    assert await cancellation_events(pool, order.order_id) == []
    assert await pool.fetch("SELECT 1 FROM mail_log WHERE order_id = $1 AND kind = 'order_cancelled'", order.order_id) == []
    assert await pool.fetchval("SELECT true FROM inbox WHERE message_id = $1", cancel.event_id)


async def test_a_cancellation_mail_the_server_refuses_ends_as_mail_failed_with_the_reason(pool, handlers, transport) -> None:
    order = accepted_order()
    await deliver(pool, handlers.on_order_accepted, order)
    transport.failure = MailRefused("550 5.1.1 mailbox unavailable")
    await deliver(pool, handlers.on_order_cancelled, cancelled(order, notify_customer=True))

    [event] = await cancellation_events(pool, order.order_id)
    assert (event["type"], event["reason"]) == ("MailFailed", "550 5.1.1 mailbox unavailable")
