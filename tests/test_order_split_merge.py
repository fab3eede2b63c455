"""Split and merge on the real broker (seed 001): a split edits the source and adds a delivery group or a new order
that goes through intake and payment; a merge makes one new order and cancels the sources with their payments."""

import json
import uuid

from ordermesh_contracts import (
    MergeOrders,
    MovedLine,
    OrderLine,
    Payment,
    SetShippingFees,
    SplitOrder,
    order_id_for,
    topics,
)
from ordermesh_devstack.demo import DEMO_SHOP, demo_order
from ordermesh_ops.client import Connection, send_command
from support import fetch, publish_raw


def waiting_order(number: int, quantities: dict[str, int], *, customer_number: int | None = None, shop_id: str = DEMO_SHOP):
    """A card order of skus nobody stocks (so it waits, authorized, in awaiting_allocation)."""
    order = demo_order(number, shop_id=shop_id)
    lines = [
        OrderLine(sku=f"{sku}-{uuid.uuid4().hex[:6]}", name=f"在庫なし {sku}", unit_price=1000, quantity=quantity, tax_rate_percent=10)
        for sku, quantity in quantities.items()
    ]
    merchandise = sum(line.unit_price * line.quantity for line in lines)
    customer = order.customer.model_copy(update={"customer_id": f"SPLIT-{customer_number or number}"})
    return order.model_copy(update={
        "customer": customer,
        "deliveries": [order.deliveries[0].model_copy(update={"lines": lines})],
        "charges": order.charges.model_copy(update={"shipping_fee": 550, "total": merchandise + 550}),
        "payment": Payment(method="card", card_token="tok_visa"),
    })


async def send(stack, command) -> dict:
    return await send_command(Connection(stack.bootstrap, {}, stack.api_token), topics.ORDERS_COMMANDS, command)


async def placed_and_authorized(stack, recorder, order):
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id, timeout=60)
    return order_id


async def snapshot_of(stack, order_id):
    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage, total, snapshot FROM orders WHERE order_id = $1", order_id)
    return row["stage"], row["total"], json.loads(row["snapshot"])


async def test_a_split_into_a_delivery_group_moves_units_and_keeps_the_total(stack, recorder):
    order = waiting_order(992_001, {"A": 3})
    order_id = await placed_and_authorized(stack, recorder, order)
    sku = order.deliveries[0].lines[0].sku
    reply = await send(stack, SplitOrder(
        shop_id=DEMO_SHOP, issued_by="staff:test", order_id=order_id, into="delivery",
        lines=[MovedLine(sku=sku, quantity=1)], requested_date=None,
        address=order.deliveries[0].address.model_copy(update={"postal_code": "952-0011", "prefecture": "新潟県", "city": "佐渡市"}),
    ))
    assert reply["type"] == "CommandAccepted", reply
    assert (reply["details"]["total"], reply["details"]["new_order_id"]) == (3550, None)
    [split] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderSplit", order_id=order_id)
    assert (split.json()["into"], split.json()["new_delivery_index"]) == ("delivery", 1)
    [edited] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderEdited", order_id=order_id)
    assert [[(line["sku"], line["quantity"]) for line in group["lines"]] for group in edited.json()["deliveries"]] == [[(sku, 2)], [(sku, 1)]]
    _, total, snapshot = await snapshot_of(stack, order_id)
    assert total == 3550 and len(snapshot["deliveries"]) == 2
    assert snapshot["deliveries"][1]["address"]["city"] == "佐渡市"
    # the new address gets the intake checks: Sado is a remote island and a relay area
    tasks = await fetch(stack.service_dsns["orders"], "SELECT kind FROM order_tasks WHERE order_id = $1 AND status = 'open'", order_id)
    assert {"remote_island", "relay_area"} <= {task["kind"] for task in tasks}


async def test_a_split_into_a_new_order_lowers_the_source_and_the_new_order_is_taken_in_and_authorized(stack, recorder):
    order = waiting_order(992_002, {"A": 2, "B": 1})
    order_id = await placed_and_authorized(stack, recorder, order)
    moved = order.deliveries[0].lines[1].sku
    reply = await send(stack, SplitOrder(
        shop_id=DEMO_SHOP, issued_by="staff:test", order_id=order_id, into="order",
        lines=[MovedLine(sku=moved, quantity=1)], shipping_fee=550,
    ))
    assert reply["type"] == "CommandAccepted", reply
    new_order_id = reply["details"]["new_order_id"]
    assert reply["details"]["total"] == 2550
    [accepted] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=new_order_id)
    body = accepted.json()
    assert body["external_order_no"] == f"{order.external_order_no}-S1"
    assert [(line["sku"], line["quantity"]) for line in body["deliveries"][0]["lines"]] == [(moved, 1)]
    assert body["charges"]["total"] == 1550 and body["customer"]["customer_id"] == order.customer.customer_id
    [authorized] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=new_order_id, timeout=60)
    assert authorized.json()["amount"] == 1550
    _, source_total, snapshot = await snapshot_of(stack, order_id)
    assert source_total == 2550 and [line["sku"] for line in snapshot["deliveries"][0]["lines"]] == [order.deliveries[0].lines[0].sku]


async def test_merging_makes_one_order_with_one_shipping_fee_and_cancels_the_sources_with_their_payments(stack, recorder):
    first = waiting_order(992_010, {"A": 1}, customer_number=992_010)
    second = waiting_order(992_011, {"B": 2}, customer_number=992_010)
    ids = [await placed_and_authorized(stack, recorder, order) for order in (first, second)]

    reply = await send(stack, MergeOrders(shop_id=DEMO_SHOP, issued_by="staff:test", order_ids=ids))
    assert reply["type"] == "CommandAccepted", reply
    merged_id = reply["details"]["order_id"]
    assert reply["details"]["total"] == 1000 + 2000 + 550
    [merged] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrdersMerged", order_id=merged_id)
    assert merged.json()["source_order_ids"] == [str(i) for i in ids]
    [accepted] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=merged_id)
    assert sorted(line["quantity"] for line in accepted.json()["deliveries"][0]["lines"]) == [1, 2]
    [authorized] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=merged_id, timeout=60)
    assert authorized.json()["amount"] == 3550
    for source in ids:
        [cancelled] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCancelled", order_id=source)
        assert cancelled.json()["reason"] == f"merged into {accepted.json()['external_order_no']}"
        [voided] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCancelled", order_id=source, timeout=60)
        assert voided.json()["outcome"] == "voided"
        assert (await snapshot_of(stack, source))[0] == "cancelled"
    assert recorder.on(topics.NOTIFY_EVENTS, type="MailSent", mail_kind="order_cancelled", order_id=ids[0]) == []


async def test_a_merge_of_other_customers_orders_is_refused_and_nothing_is_cancelled(stack, recorder):
    first = waiting_order(992_020, {"A": 1})
    second = waiting_order(992_021, {"B": 1})
    ids = [await placed_and_authorized(stack, recorder, order) for order in (first, second)]
    reply = await send(stack, MergeOrders(shop_id=DEMO_SHOP, issued_by="staff:test", order_ids=ids))
    assert reply["type"] == "CommandRejected"
    assert reply["reasons"] == ["the orders differ in customer"]
    twice = await send(stack, MergeOrders(shop_id=DEMO_SHOP, issued_by="staff:test", order_ids=[ids[0], ids[0]]))
    assert twice["reasons"] == ["an order is listed twice"]
    assert [(await snapshot_of(stack, order_id))[0] for order_id in ids] == ["awaiting_allocation"] * 2
    assert all(recorder.on(topics.ORDERS_EVENTS, type="OrderCancelled", order_id=i) == [] for i in ids)


async def test_a_merge_in_a_shop_with_a_fee_table_ships_free_once_the_merged_merchandise_passes_free_from(stack, recorder):
    shop = f"fees-{uuid.uuid4().hex[:8]}"
    table = SetShippingFees(shop_id=shop, issued_by="staff:test", fee=800, by_prefecture={"北海道": 1320}, free_from=3000,
                            remote_island_surcharge=1100)
    assert (await send(stack, table))["type"] == "CommandAccepted"
    first = waiting_order(992_030, {"A": 1}, customer_number=992_030, shop_id=shop)  # 1000 + 550 shipping
    second = waiting_order(992_031, {"B": 2}, customer_number=992_030, shop_id=shop)  # 2000 + 550 shipping
    ids = [await placed_and_authorized(stack, recorder, order) for order in (first, second)]

    reply = await send(stack, MergeOrders(shop_id=shop, issued_by="staff:test", order_ids=ids))
    assert reply["type"] == "CommandAccepted", reply
    assert (reply["details"]["shipping_fee"], reply["details"]["total"]) == (0, 3000)
    merged_id = reply["details"]["order_id"]
    [accepted] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=merged_id)
    assert (accepted.json()["charges"]["shipping_fee"], accepted.json()["charges"]["total"]) == (0, 3000)
    [authorized] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=merged_id, timeout=60)
    assert authorized.json()["amount"] == 3000
    _, total, snapshot = await snapshot_of(stack, merged_id)
    assert total == 3000 and snapshot["charges"]["shipping_fee"] == 0
    for source in ids:
        [voided] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCancelled", order_id=source, timeout=60)
        assert voided.json()["outcome"] == "voided"
