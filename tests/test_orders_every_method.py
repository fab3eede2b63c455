"""Orders of every settled payment method reach completed, and the delivery-date check holds an order for staff."""

import json
from datetime import date, timedelta

from ordermesh_contracts import ConfirmDeliveryDate, Payment, PaymentMethod, order_id_for, topics
from ordermesh_devstack.demo import DEMO_SHOP, demo_order
from ordermesh_ops.client import Connection, send_command
from support import eventually, fetch, publish_raw


async def _submit(stack, order):
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def test_a_cash_on_delivery_order_completes_only_after_the_carrier_collected_the_cash(stack, recorder):
    order = demo_order(970_001).model_copy(update={"payment": Payment(method=PaymentMethod.CASH_ON_DELIVERY)})
    order_id = await _submit(stack, order)
    [received] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentReceived", order_id=order_id, timeout=90)
    assert (received.json()["method"], received.json()["amount"], received.json()["balance"]) == ("cash_on_delivery", order.charges.total, 0)
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    delivered = recorder.on(topics.SHIPPING_EVENTS, type="ShipmentDelivered", order_id=order_id)
    assert delivered and delivered[0].json()["cash_collected"] == order.charges.total
    [row] = await fetch(stack.service_dsns["orders"], "SELECT flags FROM orders WHERE order_id = $1", order_id)
    flags = json.loads(row["flags"])
    assert (flags["cod_collection"], flags["card_authorization"], flags["points"]) == ("collected", "not_applicable", "confirmed")
    assert await fetch(stack.service_dsns["payments"], "SELECT 1 FROM gateway_calls WHERE order_id = $1", order_id) == []


async def test_a_requested_delivery_date_that_cannot_be_met_holds_the_order_in_review_until_staff_confirm_it(stack, recorder):
    order = demo_order(970_002)
    too_early = order.deliveries[0].model_copy(update={"requested_date": date.today()})
    order = order.model_copy(update={"deliveries": [too_early]})
    order_id = await _submit(stack, order)
    [checked] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="DeliveryDateChecked", order_id=order_id)
    assert checked.json()["result"] == "error"
    tasks = await eventually(lambda: fetch(
        stack.service_dsns["orders"], "SELECT kind FROM order_tasks WHERE order_id = $1 AND kind = 'delivery_date_error'", order_id))
    assert len(tasks) == 1
    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage, flags FROM orders WHERE order_id = $1", order_id)
    assert (row["stage"], json.loads(row["flags"])["delivery_date"]) == ("review", "error")

    connection = Connection(stack.bootstrap, {}, stack.api_token)
    reply = await send_command(connection, topics.ORDERS_COMMANDS, ConfirmDeliveryDate(shop_id=DEMO_SHOP, issued_by="staff:test", order_id=order_id))
    assert reply["type"] == "CommandAccepted"
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)


async def test_an_order_with_a_feasible_requested_date_waits_for_the_check_and_then_moves_on(stack, recorder):
    order = demo_order(970_003)
    later = order.deliveries[0].model_copy(update={"requested_date": date.today() + timedelta(days=14)})
    order = order.model_copy(update={"deliveries": [later]})
    order_id = await _submit(stack, order)
    [checked] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="DeliveryDateChecked", order_id=order_id)
    assert checked.json()["result"] == "ok"
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)


async def test_an_order_using_more_points_than_the_customer_has_stays_in_review_with_a_task(stack, recorder):
    order = demo_order(970_004)
    charges = order.charges.model_copy(update={"points_used": 100, "total": order.charges.total - 100})
    order = order.model_copy(update={"charges": charges, "customer": order.customer.model_copy(update={"customer_id": "NO-POINTS-1"})})
    order_id = await _submit(stack, order)
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsRedemptionFailed", order_id=order_id)
    tasks = await eventually(lambda: fetch(
        stack.service_dsns["orders"], "SELECT blocking FROM order_tasks WHERE order_id = $1 AND kind = 'points_redemption_failed'", order_id))
    assert tasks[0]["blocking"] is True
    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage FROM orders WHERE order_id = $1", order_id)
    assert row["stage"] == "review"
