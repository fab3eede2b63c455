"""End to end on the real broker (issue 6): allocation full, partial and waiting, two orders in two partitions for
the last unit, and the sandbox warehouse failing on demand — slow (a timeout), flaky, down, refusing — and shipping
goods after their order was cancelled. The sandbox warehouse picks its behaviour from sku prefixes."""

import json
import uuid

import pytest
from aiokafka.partitioner import murmur2

from ordermesh_contracts import CancelOrder, ImportStock, StockLevel, order_id_for, topics
from ordermesh_devstack.demo import DEMO_SHOP, demo_order
from ordermesh_ops.client import Connection, send_command
from support import eventually, fetch, publish_raw
from test_shipping_stock_consistency import stock_disagreements

STAFF = {"shop_id": DEMO_SHOP, "issued_by": "e2e"}


@pytest.fixture(autouse=True)
async def stock_agrees_after_each_test(stack):
    yield
    assert await stock_disagreements(stack) == []


def order_of(number: int, lines: list[tuple[str, int]]):
    base = demo_order(number)
    template = base.deliveries[0].lines[0]
    new_lines = [template.model_copy(update={"sku": sku, "quantity": qty, "name": f"商品 {sku}"}) for sku, qty in lines]
    total = sum(line.unit_price * line.quantity for line in new_lines) + base.charges.shipping_fee
    return base.model_copy(update={
        "deliveries": [base.deliveries[0].model_copy(update={"lines": new_lines})],
        "charges": base.charges.model_copy(update={"total": total}),
    })


def id_of(order) -> uuid.UUID:
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def submit(stack, order) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    return id_of(order)


async def import_stock(stack, recorder, levels: dict[str, int]) -> dict:
    command = ImportStock(**STAFF, lines=[StockLevel(sku=s, on_hand=n) for s, n in levels.items()], allow_new_skus=True)
    await publish_raw(stack.bootstrap, topics.SHIPPING_COMMANDS, command.model_dump_json().encode(), command.kafka_key().encode())
    [reply] = await recorder.wait_for(topics.OPS_REPLIES, command_id=command.event_id, timeout=60)
    assert reply.json()["type"] == "CommandAccepted", reply.json()
    return reply.json()


async def stock_row(stack, sku: str) -> tuple[int, int]:
    [row] = await fetch(stack.service_dsns["shipping"], "SELECT on_hand, allocated FROM stock WHERE sku = $1 AND warehouse = 'main'", sku)
    return row["on_hand"], row["allocated"]


async def shipment(stack, order_id):
    [row] = await fetch(stack.service_dsns["shipping"], "SELECT * FROM shipments WHERE order_id = $1", order_id)
    return row


async def order_row(stack, order_id) -> dict:
    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage, flags FROM orders WHERE order_id = $1", order_id)
    return {"stage": row["stage"], **json.loads(row["flags"])}


async def open_tasks(stack, order_id) -> set[str]:
    rows = await fetch(stack.service_dsns["orders"], "SELECT kind FROM order_tasks WHERE order_id = $1 AND closed_at IS NULL", order_id)
    return {row["kind"] for row in rows}


def allocated_lines(event) -> dict[str, int]:
    return {line["sku"]: line["quantity"] for line in event.json()["lines"]}


async def test_full_partial_and_waiting_allocation_and_the_waiting_orders_served_oldest_first(stack, recorder):
    a, b = f"ALF-{uuid.uuid4().hex[:8]}", f"ALF-{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, {a: 3, b: 1})
    full_id = await submit(stack, order_of(996_001, [(a, 2), (b, 1)]))
    [full] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=full_id, timeout=90)
    assert (full.json()["allocation"], allocated_lines(full)) == ("full", {a: 2, b: 1})
    partial_id = await submit(stack, order_of(996_002, [(a, 2), (b, 1)]))
    [partial] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=partial_id, timeout=90)
    assert (partial.json()["allocation"], allocated_lines(partial)) == ("partial", {a: 1})
    waiting_id = await submit(stack, order_of(996_003, [(b, 1)]))
    [waiting] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=waiting_id, timeout=90)
    assert (waiting.json()["allocation"], allocated_lines(waiting)) == ("none", {})
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=full_id, timeout=90)
    assert await stock_row(stack, a) == (1, 1) and await stock_row(stack, b) == (0, 0)
    for order_id, allocation in ((partial_id, "partial"), (waiting_id, "none")):
        await eventually(lambda: _flags_are(stack, order_id, stage="awaiting_allocation", allocation=allocation))

    # Two units of b: the older (partial) order is served first and tops up to full, then the waiting one.
    reply = await import_stock(stack, recorder, {a: 2, b: 2})
    assert reply["details"]["allocated_orders"] == [
        {"order_id": str(partial_id), "allocation": "full"}, {"order_id": str(waiting_id), "allocation": "full"},
    ]
    for order_id in (partial_id, waiting_id):
        await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    assert await stock_row(stack, a) == (0, 0) and await stock_row(stack, b) == (0, 0)


async def test_two_orders_in_two_partitions_for_the_last_unit_exactly_one_gets_it(stack, recorder):
    sku = f"LAST-{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, {sku: 1})
    partitions = stack.config.partitions
    orders, seen = [], set()
    for number in range(996_010, 996_100):
        order = order_of(number, [(sku, 1)])
        partition = (murmur2(str(id_of(order)).encode()) & 0x7FFFFFFF) % partitions
        if partition not in seen:
            seen.add(partition)
            orders.append(order)
        if len(orders) == 2:
            break
    assert len(seen) == 2
    ids = [await submit(stack, order) for order in orders]
    results = {}
    for order_id in ids:
        [event] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=order_id, timeout=90)
        results[order_id] = event.json()["allocation"]
    assert sorted(results.values()) == ["full", "none"]
    winner = next(order_id for order_id, allocation in results.items() if allocation == "full")
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=winner, timeout=60)
    loser = next(order_id for order_id in ids if order_id != winner)
    assert recorder.on(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=loser) == []
    await eventually(lambda: _stock_is(stack, sku, (0, 0)))


async def test_a_flaky_warehouse_is_retried_until_it_takes_the_request_which_ships_once(stack, recorder):
    sku = f"FLAKY-{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, {sku: 5})
    order_id = await submit(stack, order_of(996_101, [(sku, 2)]))
    [requested] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=order_id, timeout=90)
    row = await shipment(stack, order_id)
    assert (row["request_attempts"], row["last_error"]) == (2, "TransientError: warehouse answered 503")
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    assert len(recorder.on(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id)) == 1
    assert (await shipment(stack, order_id))["warehouse_request_id"] == requested.json()["warehouse_request_id"]
    assert recorder.on(topics.SHIPPING_EVENTS, type="ShipmentRequestFailed", order_id=order_id) == []
    assert await stock_row(stack, sku) == (3, 0)


async def test_a_warehouse_that_times_out_is_retried_with_the_same_key_and_the_parcel_ships_once(stack, recorder):
    sku = f"SLOW-{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, {sku: 5})
    order_id = await submit(stack, order_of(996_102, [(sku, 1)]))
    # The warehouse took the first try but answers only after shipping's timeout; the parcel leaves meanwhile.
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=150)
    # The order may complete before the first try times out: wait until the timeout is recorded.
    row = await eventually(lambda: _timed_out(stack, order_id), timeout=60)
    assert (row["request_attempts"], row["last_error"]) == (1, "TransientError: warehouse timed out on POST /v1/shipments")
    assert row["status"] == "delivered"
    [shipped] = recorder.on(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id)
    # Whether the retry's answer or the parcel's departure reaches shipping first depends on timing (the callback
    # waits behind the retrying request when both are in one consumer's batch); either way no stale "requested"
    # follows the shipped news on the order's partition.
    about_order = [m for m in recorder.messages if m.topic == topics.SHIPPING_EVENTS and m.key == shipped.key]
    requested = recorder.on(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=order_id)
    assert len(requested) <= 1
    assert all(about_order.index(r) < about_order.index(shipped) for r in requested)
    assert recorder.on(topics.SHIPPING_EVENTS, type="ShipmentRequestFailed", order_id=order_id) == []
    assert await stock_row(stack, sku) == (4, 0)


@pytest.mark.parametrize(("prefix", "attempts", "reason"), [
    ("DOWN-", 5, "TransientError: warehouse answered 503"),
    ("REJECT-", 1, "warehouse refused the request: 422"),
])
async def test_a_warehouse_that_stays_down_or_refuses_fails_the_request_into_a_task_and_the_order_says_so(stack, recorder, prefix, attempts, reason):
    sku = f"{prefix}{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, {sku: 5})
    order_id = await submit(stack, order_of(996_103, [(sku, 1)]))
    [failed] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentRequestFailed", order_id=order_id, timeout=120)
    assert failed.json()["attempts"] == attempts and failed.json()["reason"].startswith(reason)
    row = await shipment(stack, order_id)
    assert (row["status"], row["request_attempts"]) == ("request_failed", attempts)
    assert recorder.on(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=order_id) == []
    await eventually(lambda: _has_task(stack, order_id, "shipment_request_failed"))
    flags = await order_row(stack, order_id)
    assert (flags["stage"], flags["shipment_request"]) == ("ready_to_ship", "failed")
    # Nothing left: the units stay set aside for the order until staff act.
    assert await stock_row(stack, sku) == (5, 1)


async def test_goods_that_leave_after_their_order_was_cancelled_are_flagged_as_a_task_and_stock_stays_right(stack, recorder):
    sku = f"RUNAWAY-{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, {sku: 5})
    order_id = await submit(stack, order_of(996_104, [(sku, 2)]))
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=order_id, timeout=90)
    await eventually(lambda: _stage_is(stack, order_id, "shipping"))
    assert await stock_row(stack, sku) == (5, 2)

    reply = await send_command(
        Connection(stack.bootstrap, {}, stack.api_token),
        topics.ORDERS_COMMANDS,
        CancelOrder(**STAFF, order_id=order_id, reason="customer called", restore_stock=True, cancel_payment=True,
                    notify_customer=False),
    )
    assert reply["type"] == "CommandAccepted", reply
    [cancelled] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="OrderShippingCancelled", order_id=order_id, timeout=60)
    assert (cancelled.json()["shipments_cancelled"], cancelled.json()["stock_released"]) == (1, True)

    # The warehouse said "cancelled", and the parcel left anyway.
    [failed] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentCancelFailed", order_id=order_id, timeout=60)
    assert "goods left without an order" in failed.json()["reason"]
    row = await shipment(stack, order_id)
    assert (row["status"], row["flagged"], row["cancel_error"]) == ("cancelled", "shipped_after_cancel", failed.json()["reason"])
    assert row["tracking_number"] in failed.json()["reason"]
    assert recorder.on(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id) == []
    await eventually(lambda: _has_task(stack, order_id, "shipping_cancellation_failed"))
    flags = await order_row(stack, order_id)
    assert (flags["stage"], flags["shipping_cancellation"]) == ("cancelled", "failed")
    assert await stock_row(stack, sku) == (3, 0)


async def _flags_are(stack, order_id, **expected: str) -> bool:
    flags = await order_row(stack, order_id)
    return all(flags.get(name) == value for name, value in expected.items())


async def _timed_out(stack, order_id):
    row = await shipment(stack, order_id)
    return row if row["request_attempts"] else None


async def _stage_is(stack, order_id, stage: str) -> bool:
    rows = await fetch(stack.service_dsns["orders"], "SELECT stage FROM orders WHERE order_id = $1", order_id)
    return bool(rows) and rows[0]["stage"] == stage


async def _has_task(stack, order_id, kind: str) -> bool:
    return kind in await open_tasks(stack, order_id)


async def _stock_is(stack, sku: str, expected: tuple[int, int]) -> bool:
    return await stock_row(stack, sku) == expected
