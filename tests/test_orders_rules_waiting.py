"""A rule whose child status belongs to a later stage's group waits for the order to reach that stage, end to end."""

import json
import uuid

from ordermesh_contracts import (
    CloseTask,
    ConfigureStatuses,
    Payment,
    PaymentMethod,
    SetRules,
    StatusGroup,
    order_id_for,
    topics,
)
from ordermesh_devstack.demo import demo_order
from ordermesh_ops.client import Connection, send_command
from support import eventually, fetch, publish_raw

BANK_TRANSFER_RULES = {
    "groups": [
        {
            "name": "payments",
            "rules": [
                {
                    "name": "bank transfer",
                    "conditions": [{"field": "payment_method", "op": "eq", "value": "bank_transfer"}],
                    "actions": [{"type": "set_child_status", "status": "銀行振込待ち"}],
                },
                {
                    "name": "look first",
                    "conditions": [{"field": "remarks", "op": "contains", "value": "check"}],
                    "actions": [{"type": "add_task", "note": "check the remarks", "blocking": True}],
                },
            ],
        }
    ]
}


async def _order_row(stack, order_id):
    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage, child_status FROM orders WHERE order_id = $1", order_id)
    return row


async def _history(stack, order_id) -> list[tuple[str, dict]]:
    rows = await fetch(
        stack.service_dsns["orders"], "SELECT what, details FROM order_history WHERE order_id = $1 ORDER BY id", order_id
    )
    return [(row["what"], json.loads(row["details"])) for row in rows]


async def test_a_bank_transfer_rule_sets_its_awaiting_payment_status_once_the_order_reaches_that_stage(stack, recorder):
    shop = f"waiting-{uuid.uuid4().hex[:6]}"
    connection = Connection(bootstrap=stack.bootstrap, service_urls={}, token=stack.api_token)
    staff = {"shop_id": shop, "issued_by": "staff:e2e"}
    statuses = await send_command(connection, topics.ORDERS_COMMANDS, ConfigureStatuses(**staff, groups=[
        StatusGroup(stage="review", name="新規受付", children=["確認中"]),
        StatusGroup(stage="awaiting_payment", name="入金待ち", children=["銀行振込待ち"]),
    ]))
    assert statuses["type"] == "CommandAccepted", statuses
    rules = await send_command(connection, topics.ORDERS_COMMANDS, SetRules(**staff, rule_set=BANK_TRANSFER_RULES))
    assert rules["type"] == "CommandAccepted", rules

    # one order goes straight on to awaiting payment, the other is kept in review by a blocking task first
    straight = demo_order(961_001, shop_id=shop).model_copy(update={"payment": Payment(method=PaymentMethod.BANK_TRANSFER)})
    held = demo_order(961_002, shop_id=shop).model_copy(
        update={"payment": Payment(method=PaymentMethod.BANK_TRANSFER), "remarks": "please check my address"}
    )
    ids = {}
    for order in (straight, held):
        ids[order.external_order_no] = order_id_for(shop, order.channel.value, order.external_order_no)
        await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
    straight_id, held_id = ids[straight.external_order_no], ids[held.external_order_no]

    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderProgressed", order_id=straight_id, to_stage="awaiting_payment")
    row = await _order_row(stack, straight_id)
    assert (row["stage"], row["child_status"]) == ("awaiting_payment", "銀行振込待ち")
    history = await _history(stack, straight_id)
    assert ("rule action waiting", {"rule": "payments/bank transfer", "status": "銀行振込待ち", "until": "awaiting_payment"}) in history
    assert ("rule action applied", {"rule": "payments/bank transfer", "status": "銀行振込待ち"}) in history
    assert not [entry for entry in history if entry[0] == "rule action skipped"]

    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=held_id)
    row = await eventually(lambda: _order_row(stack, held_id))
    assert (row["stage"], row["child_status"]) == ("review", None)
    [task] = await fetch(
        stack.service_dsns["orders"], "SELECT task_id FROM order_tasks WHERE order_id = $1 AND status = 'open' AND blocking", held_id
    )
    closed = await send_command(connection, topics.ORDERS_COMMANDS, CloseTask(**staff, order_id=held_id, task_id=task["task_id"]))
    assert closed["type"] == "CommandAccepted", closed
    assert closed["details"]["stage"] == "awaiting_payment"
    row = await _order_row(stack, held_id)
    assert (row["stage"], row["child_status"]) == ("awaiting_payment", "銀行振込待ち")
    [firing] = await fetch(
        stack.service_dsns["orders"],
        "SELECT waiting_status, applied_at FROM order_rule_firings WHERE order_id = $1 AND rule_id = 'payments/bank transfer'",
        held_id,
    )
    assert firing["waiting_status"] is None and firing["applied_at"] is not None
    applied = [entry for entry in await _history(stack, held_id) if entry[0] == "rule action applied"]
    assert applied == [("rule action applied", {"rule": "payments/bank transfer", "status": "銀行振込待ち"})]
