"""Rules and two-level statuses end to end: rules fire at intake, their firing is history, bad rule sets are refused."""

import json

from ordermesh_contracts import CloseTask, ConfigureStatuses, SetChildStatus, SetRules, StatusGroup, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_devstack.sandboxes.smtp_sink import read_mails
from ordermesh_ops.client import Connection, send_command
from support import fetch, publish_raw

SHOP = "rules-shop"
GIFT_RULES = {
    "groups": [
        {
            "name": "gifts",
            "rules": [
                {
                    "name": "gift wrapping",
                    "conditions": [
                        {"field": "payment_method", "op": "eq", "value": "card"},
                        {"field": "remarks", "op": "contains", "value": "gift"},
                    ],
                    "actions": [
                        {"type": "set_child_status", "status": "ギフト確認"},
                        {"type": "add_task", "note": "wrap as a gift", "blocking": True},
                        {"type": "add_free_line", "sku": "GIFT-CARD", "name": "メッセージカード"},
                        {"type": "add_label", "label": "gift"},
                        {"type": "add_mail_text", "mail_kind": "order_confirmation", "text": "ギフト包装いたします。"},
                    ],
                }
            ],
        }
    ]
}


def _connection(stack) -> Connection:
    return Connection(bootstrap=stack.bootstrap, service_urls={}, token=stack.api_token)


def _staff(**fields):
    return {"shop_id": SHOP, "issued_by": "staff:test", **fields}


async def test_a_rule_fires_at_intake_sets_status_task_free_line_and_label_and_staff_release_it(stack, recorder):
    connection = _connection(stack)
    await stack.set_stock({"GIFT-CARD": 1000})
    statuses = await send_command(connection, topics.ORDERS_COMMANDS, ConfigureStatuses(**_staff(groups=[
        StatusGroup(stage="review", name="新規受付", children=["ギフト確認", "確認済み"]),
    ])))
    assert statuses["type"] == "CommandAccepted" and len(statuses["details"]["groups"]) == 9
    reply = await send_command(connection, topics.ORDERS_COMMANDS, SetRules(**_staff(rule_set=GIFT_RULES)))
    assert reply["type"] == "CommandAccepted" and reply["details"] == {"rules": 1}

    order = demo_order(960_001, shop_id=SHOP).model_copy(update={"remarks": "It is a gift, please wrap"})
    order_id = order_id_for(SHOP, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
    [accepted] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=order_id)
    lines = accepted.json()["deliveries"][0]["lines"]
    assert lines[-1]["sku"] == "GIFT-CARD" and lines[-1]["unit_price"] == 0
    assert accepted.json()["mail_texts"] == {"order_confirmation": "ギフト包装いたします。"}

    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage, child_status, labels FROM orders WHERE order_id = $1", order_id)
    assert (row["stage"], row["child_status"], row["labels"]) == ("review", "ギフト確認", ["gift"])
    history = await fetch(stack.service_dsns["orders"], "SELECT what, details FROM order_history WHERE order_id = $1 ORDER BY id", order_id)
    assert ("rule fired", {"rule": "gifts/gift wrapping"}) in [(h["what"], json.loads(h["details"])) for h in history]

    wrong_stage = await send_command(connection, topics.ORDERS_COMMANDS, SetChildStatus(**_staff(order_id=order_id, status="nope")))
    assert wrong_stage["type"] == "CommandRejected" and "no child status 'nope'" in wrong_stage["reasons"][0]
    [task] = await fetch(stack.service_dsns["orders"], "SELECT task_id FROM order_tasks WHERE order_id = $1 AND status = 'open'", order_id)
    closed = await send_command(connection, topics.ORDERS_COMMANDS, CloseTask(**_staff(order_id=order_id, task_id=task["task_id"])))
    assert closed["type"] == "CommandAccepted"
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    [shipment] = await fetch(stack.service_dsns["shipping"], "SELECT count(*) AS n FROM order_lines WHERE order_id = $1 AND sku = 'GIFT-CARD'", order_id)
    assert shipment["n"] == 1
    # the rule's text is in the customer's confirmation mail (text and HTML), and only in that kind
    mails = [mail for mail in read_mails(stack.maildir) if mail["To"] == order.customer.email]
    confirmation = [mail for mail in mails if order.external_order_no in mail["Subject"] and "ギフト包装いたします。" in mail.get_body(("plain",)).get_content()]
    assert len(confirmation) == 1 and "ギフト包装いたします。" in confirmation[0].get_body(("html",)).get_content()
    assert sum("ギフト包装いたします。" in mail.get_body(("plain",)).get_content() for mail in mails) == 1


async def test_an_invalid_rule_set_is_refused_with_the_reason_and_the_running_rules_stay(stack, recorder):
    connection = _connection(stack)
    before = await fetch(stack.service_dsns["orders"], "SELECT rule_set FROM shop_rules WHERE shop_id = $1", SHOP)
    looping = {"groups": [{"name": "g", "rules": [
        {"name": "ab", "conditions": [{"field": "child_status", "op": "eq", "value": "a"}], "actions": [{"type": "set_child_status", "status": "b"}]},
        {"name": "ba", "conditions": [{"field": "child_status", "op": "eq", "value": "b"}], "actions": [{"type": "set_child_status", "status": "a"}]},
    ]}]}
    reply = await send_command(connection, topics.ORDERS_COMMANDS, SetRules(**_staff(rule_set=looping)))
    assert reply["type"] == "CommandRejected" and any("loop: a → b → a" in r for r in reply["reasons"])
    bad_operator = {"groups": [{"name": "g", "rules": [{"name": "x", "conditions": [{"field": "total", "op": "contains", "value": 1}], "actions": [{"type": "hold"}]}]}]}
    reply = await send_command(connection, topics.ORDERS_COMMANDS, SetRules(**_staff(rule_set=bad_operator)))
    assert reply["type"] == "CommandRejected" and any("does not apply to 'total'" in r for r in reply["reasons"])
    after = await fetch(stack.service_dsns["orders"], "SELECT rule_set FROM shop_rules WHERE shop_id = $1", SHOP)
    assert [r["rule_set"] for r in after] == [r["rule_set"] for r in before]
