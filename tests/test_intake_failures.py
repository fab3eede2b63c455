"""Bad input at intake goes to the dead-letter topic with its reason; the stream goes on; repeats are no-ops."""

import json

from ordermesh_contracts import order_id_for, topics
from ordermesh_devstack.demo import demo_order
from support import eventually, fetch, publish_raw

DLQ = topics.SHOP_ORDERS + ".dlq"


async def test_a_message_that_is_not_json_is_dead_lettered_with_reason_headers_and_the_next_order_still_completes(stack, recorder):
    garbage = b"\x00not json at all { (intake-failures test)"
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, garbage, key=b"garbage-1")
    order = demo_order(910_001)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), key=b"garbage-1")

    def this_letter():
        return [m for m in recorder.on(DLQ, **{"dlq.error_class": "InvalidJson"}) if m.value == garbage] or None

    [letter] = await eventually(this_letter, timeout=60)
    assert letter.value == garbage
    assert letter.headers["dlq.original_topic"] == topics.SHOP_ORDERS.encode()
    assert letter.headers["dlq.consumer_group"] == b"ordermesh-orders"
    assert int(letter.headers["dlq.original_offset"]) >= 0 and int(letter.headers["dlq.original_partition"]) >= 0
    assert b"not JSON" in letter.headers["dlq.error_message"]
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)


async def test_an_order_that_breaks_the_contract_is_dead_lettered_and_rejected_to_the_shop_without_personal_data(stack, recorder):
    broken = json.loads(demo_order(910_002).model_dump_json())
    broken["external_order_no"] = "BROKEN-910002"
    broken["charges"]["total"] = 12.5
    broken["surprise"] = "unknown field"
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, json.dumps(broken).encode())

    [rejection] = await recorder.wait_for(topics.SHOP_UPDATES, type="OrderRejected", external_order_no="BROKEN-910002")
    reasons = rejection.json()["reasons"]
    assert any("charges.total" in r for r in reasons) and any("surprise" in r for r in reasons)
    letters = [
        m for m in recorder.on(DLQ, **{"dlq.error_class": "ContractViolation"}) if b"BROKEN-910002" in m.value
    ]
    assert len(letters) == 1
    assert broken["customer"]["email"].encode() not in letters[0].headers["dlq.error_message"]


async def test_an_order_whose_totals_do_not_add_up_is_rejected_with_every_reason(stack, recorder):
    order = json.loads(demo_order(910_003).model_dump_json())
    order["external_order_no"] = "BADSUM-910003"
    order["charges"]["total"] += 1
    order["deliveries"][0]["lines"][0]["quantity"] = 0
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, json.dumps(order).encode())
    [rejection] = await recorder.wait_for(topics.SHOP_UPDATES, type="OrderRejected", external_order_no="BADSUM-910003")
    reasons = rejection.json()["reasons"]
    assert any("quantity must be positive" in r for r in reasons)
    assert any("does not match" in r for r in reasons)
    rows = await fetch(stack.service_dsns["orders"], "SELECT 1 FROM orders WHERE external_order_no = 'BADSUM-910003'")
    assert rows == []


async def test_the_same_shop_order_published_twice_becomes_one_order(stack, recorder):
    order = demo_order(910_004)
    payload = order.model_dump_json().encode()
    resent = order.model_copy(update={"event_id": __import__("uuid").uuid4()}).model_dump_json().encode()
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, payload)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, resent)
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    rows = await fetch(stack.service_dsns["orders"], "SELECT order_id FROM orders WHERE external_order_no = $1", order.external_order_no)
    assert len(rows) == 1
    assert len(recorder.on(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=order_id)) == 1
