"""Logs worth reading at INFO (a test of logging, so it reads log lines): grepping one order id across the five
services' logs tells its story — each handled message with its outcome, each stage and flag change, each outside call
with its result, each staff action with the actor — and never a name, e-mail address or street address."""

import json

from ordermesh_contracts import HoldOrder, ReleaseOrder, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_ops.client import Connection, send_command
from support import eventually, log_lines_about, publish_raw


async def test_one_order_id_grepped_across_the_five_logs_tells_its_story_without_personal_data(stack, recorder):
    order = demo_order(990_301)
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)
    connection = Connection(stack.bootstrap, {}, stack.api_token)
    for command in (
        HoldOrder(shop_id=order.shop_id, issued_by="staff:hanako", order_id=order_id, reason="customer called"),
        ReleaseOrder(shop_id=order.shop_id, issued_by="staff:hanako", order_id=order_id),
    ):
        await send_command(connection, topics.ORDERS_COMMANDS, command)

    def story():
        found = log_lines_about(stack, order_id)
        return found if all(found.values()) and any(e.get("actor") == "staff:hanako" for e in found["orders"]) else None

    found = await eventually(story, timeout=60, interval=1)
    for service, entries in found.items():
        handled = [e for e in entries if e["event"] == "message handled"]
        assert handled, f"{service} logged no handled message of the order"
        assert all(e["level"] == "info" and e["service"] == service and e["correlation_id"] and e["outcome"] for e in handled)
    orders = found["orders"]
    changes = [e for e in orders if e["event"] == "order changed"]
    assert {"accepted", "progressed"} <= {e["what"] for e in changes}
    assert all(e["shop_order_no"] == order.external_order_no for e in changes)
    staff = [e for e in orders if e.get("actor") == "staff:hanako"]
    assert {e.get("type") for e in staff if e["event"] == "message handled"} >= {"HoldOrder"}
    assert any(e["event"] == "order changed" and e["what"] == "HoldOrder" for e in staff)
    for service, target in (("payments", "gateway"), ("shipping", "warehouse"), ("notify", "smtp")):
        calls = [e for e in found[service] if e["event"] == "outside call" and e["target"] == target]
        assert calls and all(e["outcome"] and e["duration_ms"] >= 0 for e in calls), f"no {target} call logged by {service}"

    every_line = "\n".join(json.dumps(e, ensure_ascii=False) for entries in found.values() for e in entries)
    for personal in (order.customer.email, order.customer.name, order.billing_address.line1, "03-1234-5678"):
        assert personal not in every_line
