"""The order desk end to end: watch list, tasks, hold and release, manual mode and back, refusals, bulk updates."""

import uuid

import httpx

from ordermesh_contracts import (
    AddToWatchList,
    BulkUpdateOrders,
    CloseTask,
    HoldOrder,
    OrderChanges,
    ReleaseOrder,
    ResumeAuto,
    SetOrderStage,
    order_id_for,
    topics,
)
from ordermesh_devstack.demo import DEMO_SHOP, demo_order
from ordermesh_ops.client import Connection, send_command
from support import eventually, fetch, publish_raw


def _connection(stack) -> Connection:
    urls = {name: f"http://127.0.0.1:{stack.processes[name].http_port}" for name in ("orders", "payments", "shipping", "points", "notify")}
    return Connection(bootstrap=stack.bootstrap, service_urls=urls, token=stack.api_token)


def _staff(**fields):
    return {"shop_id": DEMO_SHOP, "issued_by": "staff:test", **fields}


async def _stage(stack, order_id) -> str:
    rows = await fetch(stack.service_dsns["orders"], "SELECT stage FROM orders WHERE order_id = $1", order_id)
    return rows[0]["stage"] if rows else None


async def test_a_watch_listed_customers_order_waits_in_review_until_staff_close_the_task(stack, recorder):
    connection = _connection(stack)
    order = demo_order(950_001)
    order = order.model_copy(update={"customer": order.customer.model_copy(update={"customer_id": "WATCHED-1"})})
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    reply = await send_command(connection, topics.ORDERS_COMMANDS, AddToWatchList(**_staff(customer_id="WATCHED-1", reason="chargebacks")))
    assert reply["type"] == "CommandAccepted"

    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
    await eventually(lambda: _stage(stack, order_id), timeout=60)
    [task] = await eventually(lambda: fetch(stack.service_dsns["orders"], "SELECT task_id, kind, blocking FROM order_tasks WHERE order_id = $1 AND status = 'open'", order_id))
    assert (task["kind"], task["blocking"]) == ("watch_listed_customer", True)
    assert await _stage(stack, order_id) == "review"

    held = await send_command(connection, topics.ORDERS_COMMANDS, HoldOrder(**_staff(order_id=order_id, reason="call first")))
    assert held["type"] == "CommandAccepted" and held["details"]["stage"] == "on_hold"
    released = await send_command(connection, topics.ORDERS_COMMANDS, ReleaseOrder(**_staff(order_id=order_id)))
    assert released["details"]["stage"] == "review"

    closed = await send_command(connection, topics.ORDERS_COMMANDS, CloseTask(**_staff(order_id=order_id, task_id=task["task_id"], note="called: fine")))
    assert closed["type"] == "CommandAccepted"
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    async with httpx.AsyncClient() as client:
        view = (await client.get(
            f"{connection.service_urls['orders']}/api/orders/order", params={"order_id": str(order_id)},
            headers={"Authorization": f"Bearer {stack.api_token}"},
        )).json()
    assert view["flags"]["customer"] == "confirmed"
    whats = [h["what"] for h in view["history"]]
    assert "HoldOrder" in whats and "ReleaseOrder" in whats and "CloseTask" in whats
    assert [t["status"] for t in view["tasks"]] == ["closed"]


async def test_a_manual_stage_change_stops_automatic_progress_until_resume_auto(stack, recorder):
    connection = _connection(stack)
    order = demo_order(950_002)
    bad_address = order.billing_address.model_copy(update={"postal_code": "ABC-DEFG"})
    order = order.model_copy(update={"billing_address": bad_address})
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
    await eventually(lambda: _stage(stack, order_id), timeout=60)
    assert await _stage(stack, order_id) == "review"

    moved = await send_command(connection, topics.ORDERS_COMMANDS, SetOrderStage(**_staff(order_id=order_id, stage="awaiting_payment")))
    assert moved["details"] == {"stage": "awaiting_payment", "mode": "manual"}
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id)
    await eventually(lambda: fetch(stack.service_dsns["orders"], "SELECT 1 FROM orders WHERE order_id = $1 AND flags->>'card_authorization' = 'authorized'", order_id))
    assert await _stage(stack, order_id) == "awaiting_payment"

    resumed = await send_command(connection, topics.ORDERS_COMMANDS, ResumeAuto(**_staff(order_id=order_id)))
    assert resumed["type"] == "CommandAccepted" and resumed["details"]["mode"] == "auto"
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)


async def test_commands_on_missing_orders_other_shops_orders_or_in_the_wrong_stage_are_refused_with_the_reason(stack, recorder):
    connection = _connection(stack)
    missing = uuid.uuid4()
    reply = await send_command(connection, topics.ORDERS_COMMANDS, HoldOrder(**_staff(order_id=missing, reason="x")))
    assert reply["type"] == "CommandRejected" and reply["reasons"] == [f"no order {missing}"]

    order = demo_order(950_003)
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    other_shop = {**_staff(order_id=order_id), "shop_id": "someone-else"}
    reply = await send_command(connection, topics.ORDERS_COMMANDS, ReleaseOrder(**other_shop))
    assert reply["type"] == "CommandRejected" and "does not belong to shop someone-else" in reply["reasons"][0]
    reply = await send_command(connection, topics.ORDERS_COMMANDS, HoldOrder(**_staff(order_id=order_id, reason="late")))
    assert reply["reasons"] == ["a completed order can't be held"]
    history = await fetch(stack.service_dsns["orders"], "SELECT what FROM order_history WHERE order_id = $1 AND what = 'HoldOrder'", order_id)
    assert history == []

    broken = HoldOrder(**_staff(order_id=order_id, reason="x")).model_dump(mode="json")
    del broken["reason"]
    import json as _json
    await publish_raw(stack.bootstrap, topics.ORDERS_COMMANDS, _json.dumps(broken).encode())
    [rejected] = await recorder.wait_for(topics.OPS_REPLIES, type="CommandRejected", command_id=broken["event_id"])
    assert any("reason" in r for r in rejected.json()["reasons"])


async def test_a_bulk_update_over_a_thousand_orders_updates_the_allowed_ones_and_reports_each_refusal(stack, recorder):
    connection = _connection(stack)
    orders = [demo_order(950_100 + n) for n in range(3)]
    ids = [order_id_for(o.shop_id, o.channel.value, o.external_order_no) for o in orders]
    for order in orders:
        await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
    for order_id in ids:
        await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    held_order = demo_order(950_200)
    held_order = held_order.model_copy(update={"billing_address": held_order.billing_address.model_copy(update={"postal_code": "ABC-DEFG"})})
    held_id = order_id_for(held_order.shop_id, held_order.channel.value, held_order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, held_order.model_dump_json().encode())
    await eventually(lambda: _stage(stack, held_id), timeout=60)

    unknown = [uuid.uuid4() for _ in range(997)]
    command = BulkUpdateOrders(**_staff(order_ids=[held_id, *ids, *unknown], changes=OrderChanges(child_status="checked", add_labels=["sale"], memo="bulk")))
    reply = await send_command(connection, topics.ORDERS_COMMANDS, command, timeout=60)
    results = {r["item"]: r for r in reply["results"]}
    assert len(results) == 1001
    assert results[str(held_id)]["ok"] is True
    assert all(results[str(i)]["reason"] == "a completed order can't be changed" for i in ids)
    assert sum(not r["ok"] for r in results.values()) == 1000
    [row] = await fetch(stack.service_dsns["orders"], "SELECT child_status, labels, memo FROM orders WHERE order_id = $1", held_id)
    assert (row["child_status"], row["labels"], row["memo"]) == ("checked", ["sale"], "bulk")
    completed = await fetch(stack.service_dsns["orders"], "SELECT child_status FROM orders WHERE order_id = ANY($1::uuid[])", ids)
    assert {r["child_status"] for r in completed} == {None}


async def test_a_phone_order_keyed_in_by_staff_goes_through_intake_and_a_bad_one_is_answered_with_every_reason(stack, recorder):
    from ordermesh_contracts import Channel, EnterOrder

    connection = _connection(stack)
    phoned = demo_order(950_300).model_copy(update={"channel": Channel.PHONE})
    reply = await send_command(connection, topics.ORDERS_COMMANDS, EnterOrder(**_staff(order=phoned)))
    order_id = order_id_for(phoned.shop_id, "phone", phoned.external_order_no)
    assert reply["type"] == "CommandAccepted" and reply["details"] == {"order_id": str(order_id)}
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)

    again = await send_command(connection, topics.ORDERS_COMMANDS, EnterOrder(**_staff(order=phoned)))
    assert again["type"] == "CommandRejected" and "already exists" in again["reasons"][0]

    wrong = demo_order(950_301).model_copy(update={"channel": Channel.FAX})
    wrong = wrong.model_copy(update={"charges": wrong.charges.model_copy(update={"total": wrong.charges.total + 5})})
    rejected = await send_command(connection, topics.ORDERS_COMMANDS, EnterOrder(**_staff(order=wrong)))
    assert rejected["type"] == "CommandRejected" and any("does not match" in r for r in rejected["reasons"])
    rows = await fetch(stack.service_dsns["orders"], "SELECT 1 FROM orders WHERE external_order_no = $1", wrong.external_order_no)
    assert rows == [] and recorder.on(topics.SHOP_UPDATES, type="OrderRejected", external_order_no=wrong.external_order_no) == []
