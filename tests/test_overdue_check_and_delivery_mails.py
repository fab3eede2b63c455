"""End to end on the real suite: staff run the overdue check of prepaid orders as of a time from the CLI (the shop's
automatic cancellation follows), and each shipped mail of an order with several deliveries names its recipient and
address."""

import json
import os
import uuid
from datetime import date, timedelta

from ordermesh_contracts import Address, Payment, PaymentMethod, SetPaymentSettings, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_devstack.sandboxes.smtp_sink import read_mails
from support import eventually, fetch
from test_payments_reconciliation import payment, place, send, stalled
from ops_cli import cli as _cli


async def _stage(stack, order_id) -> str:
    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage, flags FROM orders WHERE order_id = $1", order_id)
    return row["stage"]


async def test_staff_run_the_overdue_check_as_of_a_later_day_and_the_shop_cancels_the_unpaid_order(stack, recorder):
    shop, other_shop = (f"overdue-cli-{uuid.uuid4().hex[:6]}" for _ in range(2))
    for each, cancels in ((shop, True), (other_shop, False)):
        reply = await send(stack, topics.PAYMENTS_COMMANDS, SetPaymentSettings(
            shop_id=each, issued_by="staff:e2e", prepaid_due_days=1, cancel_overdue_prepaid=cancels,
        ))
        assert reply["type"] == "CommandAccepted", reply
    order = stalled(973_001, shop_id=shop, payment=Payment(method=PaymentMethod.CONVENIENCE_STORE))
    order_id = await place(stack, order)
    other_id = await place(stack, stalled(973_002, shop_id=other_shop, payment=Payment(method=PaymentMethod.BANK_TRANSFER)))
    [requested] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentRequested", order_id=order_id, timeout=90)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentRequested", order_id=other_id, timeout=90)
    due = date.fromisoformat(requested.json()["due_date"])

    on_the_due_day = _cli(stack, "payments", "check-overdue", "--shop", shop, "--as-of", f"{due.isoformat()}T23:59:00+09:00")
    assert on_the_due_day.returncode == 0, on_the_due_day.stdout + on_the_due_day.stderr
    assert (await payment(stack, order_id))["overdue_notified"] is False
    no_offset = _cli(stack, "payments", "check-overdue", "--shop", shop, "--as-of", f"{due.isoformat()}T23:59:00")
    assert no_offset.returncode != 0 and "has no offset" in no_offset.stderr

    day_after = (due + timedelta(days=1)).isoformat()
    checked = _cli(stack, "payments", "check-overdue", "--shop", shop, "--as-of", f"{day_after}T00:00:00+09:00")

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert str(order_id) in checked.stdout and str(other_id) not in checked.stdout
    [overdue] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentOverdue", order_id=order_id, timeout=60)
    assert (overdue.json()["due_date"], overdue.json()["cancel_order"]) == (due.isoformat(), True)
    [cancelled] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCancelled", order_id=order_id, timeout=60)
    assert cancelled.json()["causation_id"] == overdue.json()["event_id"]
    [withdrawn] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCancelled", order_id=order_id, timeout=60)
    assert withdrawn.json()["outcome"] == "request_cancelled"
    await recorder.wait_for(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id, mail_kind="order_cancelled", timeout=60)
    assert await eventually(lambda: _is(stack, order_id, "cancelled"), timeout=60)
    # only the shop's own orders are checked: the other shop's order, just as overdue by then, is untouched
    assert (await payment(stack, other_id))["overdue_notified"] is False
    assert await _stage(stack, other_id) == "awaiting_payment"
    # a second run finds nothing new: the overdue notice is given once
    again = _cli(stack, "payments", "check-overdue", "--shop", shop, "--as-of", f"{day_after}T12:00:00+09:00")
    assert again.returncode == 0 and str(order_id) not in again.stdout
    assert len(recorder.on(topics.PAYMENTS_EVENTS, type="PaymentOverdue", order_id=order_id)) == 1


async def _is(stack, order_id, stage: str) -> bool:
    return await _stage(stack, order_id) == stage


async def test_each_shipped_mail_of_an_order_with_two_deliveries_names_its_recipient_and_address(stack, recorder):
    base = demo_order(973_003)
    email = f"two-deliveries-{uuid.uuid4().hex[:6]}@example.jp"
    first_line = base.deliveries[0].lines[0].model_copy(update={"sku": "SKU-001", "quantity": 1})
    second_line = first_line.model_copy(update={"sku": "SKU-002"})
    gift_address = Address(
        name="佐藤 花子", postal_code="530-0001", prefecture="大阪府", city="大阪市北区", line1="梅田1-1", line2="梅田ビル3階",
    )
    deliveries = [
        base.deliveries[0].model_copy(update={"lines": [first_line]}),
        base.deliveries[0].model_copy(update={"lines": [second_line], "address": gift_address}),
    ]
    total = 2 * first_line.unit_price + base.charges.shipping_fee
    order = base.model_copy(update={
        "deliveries": deliveries, "charges": base.charges.model_copy(update={"total": total}),
        "customer": base.customer.model_copy(update={"email": email}),
    })
    order_id = await place(stack, order)

    shipped = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id, count=2, timeout=120)
    await recorder.wait_for(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id, mail_kind="shipped", count=2, timeout=60)

    tracking = {m.json()["delivery_index"]: m.json()["tracking_number"] for m in shipped}
    mails = [mail.get_body(("plain",)).get_content() for mail in read_mails(stack.maildir) if mail["To"] == email]
    bodies = {index: [body for body in mails if number in body] for index, number in tracking.items()}
    [to_customer], [to_friend] = bodies[0], bodies[1]
    home = base.deliveries[0].address
    assert f"お届け先 (1/2): {home.name} 様" in to_customer
    assert f"〒{home.postal_code} {home.prefecture}{home.city}{home.line1}" in to_customer
    assert "佐藤 花子" not in to_customer
    assert "お届け先 (2/2): 佐藤 花子 様" in to_friend
    assert "〒530-0001 大阪府大阪市北区梅田1-1 梅田ビル3階" in to_friend
    [logged] = await fetch(
        stack.service_dsns["notify"],
        "SELECT variables FROM mail_log WHERE order_id = $1 AND kind = 'shipped' AND variables->>'delivery_index' = '1'",
        order_id,
    )
    assert json.loads(logged["variables"])["tracking_number"] == tracking[1]
