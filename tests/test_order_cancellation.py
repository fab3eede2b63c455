"""Cancelling an order across the suite: every service reverses what staff chose, and the order shows each outcome."""

import json

import pytest

from ordermesh_contracts import CancelOrder, OrderLine, order_id_for, topics
from ordermesh_devstack.demo import DEMO_SHOP, demo_order
from ordermesh_ops.client import Connection, send_command
from support import eventually, fetch, publish_raw


def _waiting_order(number: int):
    """A card order for a sku with no stock: it waits in awaiting_allocation, authorized, never shipped."""
    order = demo_order(number)
    line = OrderLine(sku=f"NOSTOCK-{number}", name="在庫なし商品", unit_price=1000, quantity=1, tax_rate_percent=10)
    delivery = order.deliveries[0].model_copy(update={"lines": [line]})
    charges = order.charges.model_copy(update={"shipping_fee": 550, "total": 1550})
    return order.model_copy(update={"deliveries": [delivery], "charges": charges})


async def _flags(stack, order_id) -> dict:
    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage, flags FROM orders WHERE order_id = $1", order_id)
    return {"stage": row["stage"], **json.loads(row["flags"])}


@pytest.mark.parametrize(("restore_stock", "cancel_payment", "notify_customer"), [(True, True, True), (False, False, False)])
async def test_a_waiting_order_is_cancelled_and_each_service_reverses_only_what_staff_chose(
    stack, recorder, restore_stock, cancel_payment, notify_customer
):
    number = 990_000 + (1 if restore_stock else 2)
    order = _waiting_order(number)
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=order_id, timeout=60)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id)

    reply = await send_command(
        Connection(stack.bootstrap, {}, stack.api_token),
        topics.ORDERS_COMMANDS,
        CancelOrder(shop_id=DEMO_SHOP, issued_by="staff:test", order_id=order_id, reason="customer called",
                    restore_stock=restore_stock, cancel_payment=cancel_payment, notify_customer=notify_customer),
    )
    assert reply["type"] == "CommandAccepted" and reply["details"]["stage"] == "cancelled"
    [cancelled] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCancelled", order_id=order_id)
    assert cancelled.json()["customer_id"] == order.customer.customer_id

    await recorder.wait_for(topics.SHIPPING_EVENTS, type="OrderShippingCancelled", order_id=order_id)
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsReversed", order_id=order_id)
    if cancel_payment:
        [voided] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCancelled", order_id=order_id)
        assert voided.json()["outcome"] == "voided"
    if notify_customer:
        await recorder.wait_for(topics.NOTIFY_EVENTS, type="MailSent", order_id=order_id, mail_kind="order_cancelled")

    async def settled():
        flags = await _flags(stack, order_id)
        return flags if flags["shipping_cancellation"] == "done" and flags["points"] == "reversed" and (
            not cancel_payment or flags["payment_cancellation"] == "voided") and (
            not notify_customer or flags["mail_order_cancelled"] == "sent") else None

    flags = await eventually(settled, timeout=60)
    assert flags["stage"] == "cancelled"
    assert flags["payment_cancellation"] == ("voided" if cancel_payment else "not_requested")
    assert flags["stock_release"] == ("released" if restore_stock else "not_requested")
    assert flags["mail_order_cancelled"] == ("sent" if notify_customer else "not_applicable")
    if not cancel_payment:
        assert recorder.on(topics.PAYMENTS_EVENTS, type="PaymentCancelled", order_id=order_id) == []
    captures = await fetch(stack.service_dsns["payments"], "SELECT 1 FROM gateway_calls WHERE order_id = $1 AND operation = 'capture'", order_id)
    assert captures == []
    open_tasks = await fetch(stack.service_dsns["orders"], "SELECT kind FROM order_tasks WHERE order_id = $1 AND status = 'open'", order_id)
    assert open_tasks == []


async def test_a_completed_order_cannot_be_cancelled_and_nothing_is_reversed(stack, recorder):
    order = demo_order(990_010)
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    reply = await send_command(
        Connection(stack.bootstrap, {}, stack.api_token),
        topics.ORDERS_COMMANDS,
        CancelOrder(shop_id=DEMO_SHOP, issued_by="staff:test", order_id=order_id, reason="too late",
                    restore_stock=True, cancel_payment=True, notify_customer=True),
    )
    assert reply["type"] == "CommandRejected" and reply["reasons"] == ["a completed order can't be cancelled"]
    assert recorder.on(topics.ORDERS_EVENTS, type="OrderCancelled", order_id=order_id) == []
