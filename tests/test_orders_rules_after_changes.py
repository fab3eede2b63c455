"""Rules after every staff change, end to end (issue 3 §5 and §7): a rule on the child status fires after a bulk
update and its firing is in the order's history, once; a label a bulk update adds holds the order; a staff release is
not undone by a rule; a relay-area order gets its task and its fact at intake and still completes."""

import json

from ordermesh_contracts import (
    BulkUpdateOrders,
    CloseTask,
    OrderChanges,
    ReleaseOrder,
    SetRules,
    order_id_for,
    topics,
)
from ordermesh_devstack.demo import demo_order
from ordermesh_ops.client import Connection, send_command
from support import eventually, fetch, publish_raw

SHOP = "rules-after-shop"
SADO = {"postal_code": "952-0011", "prefecture": "新潟県", "city": "佐渡市", "line1": "両津夷1"}
DESK_RULES = {"groups": [{"name": "desk", "rules": [
    {"name": "first look", "actions": [{"type": "add_task", "note": "first look", "blocking": True}]},
    {"name": "relay surcharge", "conditions": [{"field": "relay_area", "op": "eq", "value": True}],
     "actions": [{"type": "add_label", "label": "relay"}]},
    {"name": "checked", "conditions": [{"field": "child_status", "op": "eq", "value": "要確認"}],
     "actions": [{"type": "add_label", "label": "desk-checked"}, {"type": "add_memo", "text": "looked at after a bulk update"}]},
    {"name": "vip hold", "conditions": [{"field": "label", "op": "contains", "value": "vip"}],
     "actions": [{"type": "hold", "reason": "vip: call the customer first"}]},
]}]}


def _connection(stack) -> Connection:
    return Connection(bootstrap=stack.bootstrap, service_urls={}, token=stack.api_token)


def _staff(**fields):
    return {"shop_id": SHOP, "issued_by": "staff:test", **fields}


async def _row(stack, order_id):
    [row] = await fetch(
        stack.service_dsns["orders"], "SELECT stage, held_from, child_status, labels, memo FROM orders WHERE order_id = $1", order_id
    )
    return row


async def _history(stack, order_id, cause_id=None):
    rows = await fetch(
        stack.service_dsns["orders"],
        "SELECT what, details FROM order_history WHERE order_id = $1 AND ($2::uuid IS NULL OR cause_id = $2) ORDER BY id",
        order_id, cause_id,
    )
    return [(row["what"], json.loads(row["details"])) for row in rows]


async def _open_tasks(stack, order_id):
    rows = await fetch(
        stack.service_dsns["orders"], "SELECT task_id, kind, note FROM order_tasks WHERE order_id = $1 AND status = 'open' ORDER BY task_id",
        order_id,
    )
    return [(row["task_id"], row["kind"], row["note"]) for row in rows]


def _in_sado(order):
    delivery = order.deliveries[0]
    address = delivery.address.model_copy(update=SADO)
    return order.model_copy(update={"billing_address": address, "deliveries": [delivery.model_copy(update={"address": address})]})


async def test_rules_fire_after_bulk_updates_once_hold_on_a_label_and_leave_a_staff_release_alone(stack, recorder):
    connection = _connection(stack)
    reply = await send_command(connection, topics.ORDERS_COMMANDS, SetRules(**_staff(rule_set=DESK_RULES)))
    assert reply["type"] == "CommandAccepted" and reply["details"] == {"rules": 4}

    sado_order, tokyo_order = _in_sado(demo_order(961_001, shop_id=SHOP)), demo_order(961_002, shop_id=SHOP)
    sado, tokyo = (order_id_for(SHOP, o.channel.value, o.external_order_no) for o in (sado_order, tokyo_order))
    for order in (sado_order, tokyo_order):
        await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    for order_id in (sado, tokyo):
        await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=order_id)

    # relay area at intake (Sado is a remote island too): a non-blocking task and a fact rules see; Tokyo has neither
    assert [kind for _, kind, _ in await _open_tasks(stack, sado)] == ["remote_island", "relay_area", "staff"]
    assert [kind for _, kind, _ in await _open_tasks(stack, tokyo)] == ["staff"]
    assert ((await _row(stack, sado))["labels"], (await _row(stack, tokyo))["labels"]) == (["relay"], [])

    bulk = BulkUpdateOrders(**_staff(order_ids=[sado, tokyo], changes=OrderChanges(child_status="要確認")))
    reply = await send_command(connection, topics.ORDERS_COMMANDS, bulk)
    assert reply["type"] == "CommandAccepted" and reply["details"] == {"updated": 2, "refused": 0}
    for order_id in (sado, tokyo):
        assert ("rule fired", {"rule": "desk/checked"}) in await _history(stack, order_id, bulk.event_id)
        row = await _row(stack, order_id)
        assert "desk-checked" in row["labels"] and row["memo"] == "looked at after a bulk update"

    again = BulkUpdateOrders(**_staff(order_ids=[sado], changes=OrderChanges(child_status="要確認", memo="second pass")))
    assert (await send_command(connection, topics.ORDERS_COMMANDS, again))["type"] == "CommandAccepted"
    assert [what for what, _ in await _history(stack, sado, again.event_id)] == ["bulk update"]
    assert [h for h in await _history(stack, sado) if h == ("rule fired", {"rule": "desk/checked"})] == [("rule fired", {"rule": "desk/checked"})]

    vip = BulkUpdateOrders(**_staff(order_ids=[tokyo], changes=OrderChanges(add_labels=["vip"])))
    assert (await send_command(connection, topics.ORDERS_COMMANDS, vip))["type"] == "CommandAccepted"
    [held] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderProgressed", order_id=tokyo, to_stage="on_hold")
    assert (held.json()["from_stage"], held.json()["causation_id"]) == ("review", str(vip.event_id))
    assert ("rule fired", {"rule": "desk/vip hold"}) in await _history(stack, tokyo, vip.event_id)

    released = await send_command(connection, topics.ORDERS_COMMANDS, ReleaseOrder(**_staff(order_id=tokyo)))
    assert released["type"] == "CommandAccepted" and released["details"]["stage"] == "review"
    assert ((await _row(stack, tokyo))["stage"], (await _row(stack, tokyo))["held_from"]) == ("review", None)

    # the relay-area order still goes all the way once staff had their first look
    [(task_id, _, _)] = [task for task in await _open_tasks(stack, sado) if task[1] == "staff"]
    closed = await send_command(connection, topics.ORDERS_COMMANDS, CloseTask(**_staff(order_id=sado, task_id=task_id)))
    assert closed["type"] == "CommandAccepted"
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=sado, timeout=90)
    await eventually(lambda: _flag(stack, sado, "label_check"), timeout=30)


async def _flag(stack, order_id, flag):
    [row] = await fetch(stack.service_dsns["orders"], "SELECT flags ->> $2 AS value FROM orders WHERE order_id = $1", order_id, flag)
    return row["value"] == "relay_area"
