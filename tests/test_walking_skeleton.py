"""End to end on the real broker and databases: a card order goes through all five services to completed."""

from email.message import EmailMessage

from ordermesh_contracts import order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_devstack.sandboxes.smtp_sink import read_mails
from support import fetch, publish_raw


def _mails_to(maildir, address: str) -> list[EmailMessage]:
    return [mail for mail in read_mails(maildir) if mail["To"] == address]


async def test_a_card_order_is_accepted_authorized_allocated_shipped_captured_confirmed_mailed_and_completed(
    stack, recorder
):
    order = demo_order(900_001)
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())

    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)

    stages = [m.json()["to_stage"] for m in recorder.on(topics.ORDERS_EVENTS, type="OrderProgressed", order_id=order_id)]
    assert stages == ["awaiting_payment", "awaiting_allocation", "ready_to_ship", "shipping", "shipped", "completed"]
    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage, flags FROM orders WHERE order_id = $1", order_id)
    assert row["stage"] == "completed"

    [payment] = await fetch(stack.service_dsns["payments"], "SELECT * FROM payments WHERE order_id = $1", order_id)
    assert (payment["status"], payment["captured_amount"]) == ("captured", order.charges.total)
    calls = await fetch(
        stack.service_dsns["payments"], "SELECT operation, status FROM gateway_calls WHERE order_id = $1 ORDER BY requested_at", order_id
    )
    assert [(c["operation"], c["status"]) for c in calls] == [("authorize", "succeeded"), ("capture", "succeeded")]

    await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentDelivered", order_id=order_id)
    [shipment] = await fetch(stack.service_dsns["shipping"], "SELECT * FROM shipments WHERE order_id = $1", order_id)
    assert shipment["status"] == "delivered" and len(shipment["tracking_number"]) == 12
    shipped_update = await recorder.wait_for(topics.SHOP_UPDATES, type="ShopOrderShipped", order_id=order_id)
    assert shipped_update[0].json()["tracking_number"] == shipment["tracking_number"]

    ledger = await fetch(stack.service_dsns["points"], "SELECT kind, points FROM ledger WHERE order_id = $1 ORDER BY entry_id", order_id)
    expected_points = sum(l.unit_price * l.quantity for d in order.deliveries for l in d.lines) // 100
    assert [(e["kind"], e["points"]) for e in ledger] == [("accrued", expected_points), ("confirmed", expected_points)]

    mails = _mails_to(stack.maildir, order.customer.email)
    subjects = sorted(mail["Subject"] for mail in mails)
    assert len(mails) == 2 and any("発送" in s for s in subjects) and any("ご注文確認" in s for s in subjects)
    shipped_mail = next(mail for mail in mails if "発送" in mail["Subject"])
    assert shipment["tracking_number"] in shipped_mail.get_body(("plain",)).get_content()


async def test_stock_leaves_the_warehouse_when_an_order_ships(stack, recorder):
    order = demo_order(900_002)
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    sku = order.deliveries[0].lines[0].sku
    [before] = await fetch(stack.service_dsns["shipping"], "SELECT on_hand, allocated FROM stock WHERE sku = $1", sku)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    [after] = await fetch(stack.service_dsns["shipping"], "SELECT on_hand, allocated FROM stock WHERE sku = $1", sku)
    ordered = sum(l.quantity for d in order.deliveries for l in d.lines if l.sku == sku)
    assert before["on_hand"] - after["on_hand"] >= ordered
    assert after["allocated"] >= 0
