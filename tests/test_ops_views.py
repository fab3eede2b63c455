"""Operations' views on the running suite: one order's story across five services by its shop order number, orders
that stopped moving with what they wait for, consumer lag per group, and the same as metrics."""

import json
import re
import uuid

import httpx

from ordermesh_contracts import Payment, PaymentMethod, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ops_cli import cli
from support import eventually, publish_raw


def metric(stack, service: str, name: str, **labels: str) -> float | None:
    """The value of one sample on a service's /metrics, or None when it is not there."""
    text = httpx.get(f"http://127.0.0.1:{stack.processes[service].http_port}/metrics", timeout=10).text
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(4))
    return None


async def test_one_orders_story_across_five_services_is_found_by_its_shop_order_number_in_time_order(stack, recorder):
    order = demo_order(990_101)
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)

    traced = cli(stack, "orders", "trace", order.external_order_no, "--json")
    assert traced.returncode == 0, traced.stdout + traced.stderr
    [story] = json.loads(traced.stdout)
    assert story["order"]["order_id"] == str(order_id) and story["order"]["stage"] == "completed"
    entries = story["entries"]
    assert {e["service"] for e in entries} == {"orders", "payments", "shipping", "points", "notify"}
    times = [e["at"].replace("T", " ") for e in entries if e["at"]]
    assert times == sorted(times)
    whats = [e["what"] for e in entries]
    assert whats.index("gateway authorize requested") < whats.index("gateway capture requested")
    assert any(w.startswith("delivery 0 shipped") for w in whats) and any(w.startswith("points ") for w in whats)
    assert any(w.startswith("mail ") and w.endswith(" sent") for w in whats)
    assert order.customer.email not in traced.stdout

    shown = cli(stack, "orders", "show", order.external_order_no)
    assert shown.returncode == 0, shown.stderr
    assert order.deliveries[0].lines[0].sku in shown.stdout and order.customer.customer_id in shown.stdout
    assert "千代田区" in shown.stdout and "charges" in shown.stdout
    unknown = cli(stack, "orders", "trace", f"NO-SUCH-{uuid.uuid4().hex[:6]}")
    assert unknown.returncode == 1 and "no order numbered" in unknown.stdout


async def test_a_bank_transfer_order_that_stopped_moving_is_listed_as_waiting_for_the_customers_payment(stack, recorder):
    order = demo_order(990_102).model_copy(update={"payment": Payment(method=PaymentMethod.BANK_TRANSFER)})
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentRequested", order_id=order_id, timeout=90)

    async def listed_as_stuck():
        result = cli(stack, "orders", "stuck", "--older-than", "2s", "--shop", order.shop_id, "--json")
        assert result.returncode == 0, result.stderr
        return [o for o in json.loads(result.stdout) if o["order_id"] == str(order_id)]

    [stuck] = await eventually(listed_as_stuck, timeout=60, interval=1)
    assert stuck["stage"] == "awaiting_payment" and stuck["idle_seconds"] >= 2
    assert stuck["waiting_for"] == [
        {"flag": "prepaid_payment", "value": "requested", "owner": "customer", "what": "the customer's prepaid payment (payments reconciles)"}
    ]
    table = cli(stack, "orders", "stuck", "--older-than", "2s", "--shop", order.shop_id)
    assert order.external_order_no in table.stdout
    assert cli(stack, "orders", "stuck", "--older-than", "soon").returncode == 2

    await eventually(lambda: (metric(stack, "orders", "ordermesh_orders", stage="awaiting_payment") or 0) >= 1, timeout=90, interval=2)
    response = httpx.get(
        f"http://127.0.0.1:{stack.processes['orders'].http_port}/api/orders/stuck",
        params={"older_than_seconds": "-1"}, headers={"Authorization": f"Bearer {stack.api_token}"}, timeout=10,
    )
    assert response.status_code == 400 and "older_than_seconds" in response.json()["reason"]


async def test_lag_shows_each_service_group_per_topic_and_each_service_exports_its_own_groups_lag(stack, recorder):
    order = demo_order(990_103)
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)

    result = cli(stack, "lag", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    groups = {r["group"] for r in rows}
    assert {"ordermesh-orders", "ordermesh-payments", "ordermesh-shipping", "ordermesh-points", "ordermesh-notify"} <= groups
    assert all(r["lag"] == r["end"] - (r["committed"] or 0) for r in rows)
    assert any(r["group"] == "ordermesh-orders" and r["topic"] == topics.SHOP_ORDERS for r in rows)
    assert "consumer lag per topic" in cli(stack, "lag").stdout

    for service in ("orders", "payments", "shipping", "points", "notify"):
        await eventually(
            lambda: metric(stack, service, "ordermesh_consumer_lag", group=f"ordermesh-{service}") is not None, timeout=90, interval=2
        )
    assert metric(stack, "orders", "ordermesh_dead_letters", topic=topics.SHOP_ORDERS) is not None
