"""End to end on the real broker: an OrderCancelled with notify_customer mails the cancellation (the order's flag
follows MailSent), and one without it mails and announces nothing."""

import json
import uuid

from ordermesh_contracts import OrderCancelled, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_devstack.sandboxes.smtp_sink import read_mails
from support import eventually, fetch, publish_raw


def waiting_for_stock(number: int):
    """A demo order for a sku nobody stocks: it waits in awaiting_allocation, where it may be cancelled."""
    base = demo_order(number, shop_id=f"ncx-{uuid.uuid4().hex[:8]}")
    line = base.deliveries[0].lines[0].model_copy(update={"sku": f"NOSTOCK-{uuid.uuid4().hex[:8]}"})
    total = line.unit_price * line.quantity + base.charges.shipping_fee
    return base.model_copy(
        update={
            "deliveries": [base.deliveries[0].model_copy(update={"lines": [line]})],
            "charges": base.charges.model_copy(update={"total": total}),
        }
    )


async def place_and_wait(stack, recorder, order) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=order_id, allocation="none", timeout=90)
    await recorder.wait_for(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id, mail_kind="order_confirmation", timeout=60)
    return order_id


async def cancel(stack, order, order_id, *, notify_customer: bool) -> OrderCancelled:
    cancelled = OrderCancelled(
        order_id=order_id, shop_id=order.shop_id, external_order_no=order.external_order_no, customer_id=order.customer.customer_id,
        reason="お客様のご依頼によるキャンセル", restore_stock=True, cancel_payment=True, notify_customer=notify_customer,
        cancelled_by="staff:e2e",
    )
    await publish_raw(stack.bootstrap, topics.ORDERS_EVENTS, cancelled.model_dump_json().encode(), cancelled.kafka_key().encode())
    return cancelled


def cancellation_mails(stack, address: str) -> list:
    return [mail for mail in read_mails(stack.maildir) if mail["To"] == address and "キャンセル" in mail["Subject"]]


async def flags(stack, order_id) -> dict:
    [row] = await fetch(stack.service_dsns["orders"], "SELECT flags FROM orders WHERE order_id = $1", order_id)
    return json.loads(row["flags"]) if isinstance(row["flags"], str) else row["flags"]


async def test_a_cancellation_with_notify_customer_mails_the_customer_once_and_the_order_shows_it_sent(stack, recorder):
    order = waiting_for_stock(990_001)
    order_id = await place_and_wait(stack, recorder, order)

    cancelled = await cancel(stack, order, order_id, notify_customer=True)
    [sent] = await recorder.wait_for(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id, mail_kind="order_cancelled", timeout=60)

    assert sent.json()["causation_id"] == str(cancelled.event_id)
    [mail] = await eventually(lambda: cancellation_mails(stack, order.customer.email), timeout=10)
    assert mail["Subject"] == f"【ご注文キャンセル】ご注文番号 {order.external_order_no}"
    text = mail.get_body(("plain",)).get_content()
    assert order.external_order_no in text and "お客様のご依頼によるキャンセル" in text
    [row] = await fetch(stack.service_dsns["notify"], "SELECT status, attempts FROM mail_log WHERE order_id = $1 AND kind = 'order_cancelled'", order_id)
    assert (row["status"], row["attempts"]) == ("sent", 1)
    assert await eventually(lambda: _flag(stack, order_id, "mail_order_cancelled", "sent"), timeout=30)


async def _flag(stack, order_id, name, value) -> bool:
    return (await flags(stack, order_id)).get(name) == value


async def test_a_cancellation_without_notify_customer_mails_and_announces_nothing(stack, recorder):
    order = waiting_for_stock(990_002)
    order_id = await place_and_wait(stack, recorder, order)

    cancelled = await cancel(stack, order, order_id, notify_customer=False)
    await eventually(lambda: fetch(stack.service_dsns["notify"], "SELECT 1 FROM inbox WHERE message_id = $1", cancelled.event_id), timeout=60)

    assert await fetch(stack.service_dsns["notify"], "SELECT 1 FROM mail_log WHERE order_id = $1 AND kind = 'order_cancelled'", order_id) == []
    assert recorder.on(topics.NOTIFY_EVENTS, order_id=order_id, mail_kind="order_cancelled") == []
    assert cancellation_mails(stack, order.customer.email) == []
    assert "mail_order_cancelled" not in await flags(stack, order_id)
