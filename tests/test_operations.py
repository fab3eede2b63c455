"""What the engineers running the suite rely on: health, readiness, metrics, and logs without personal data."""

import json

import httpx

from ordermesh_contracts import order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_devstack.stack import SERVICES
from support import publish_raw


async def test_every_service_answers_health_readiness_and_prometheus_metrics(stack, recorder):
    order = demo_order(940_001)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    async with httpx.AsyncClient(timeout=5) as client:
        for name in SERVICES:
            base = f"http://127.0.0.1:{stack.processes[name].http_port}"
            assert (await client.get(f"{base}/healthz")).status_code == 200
            ready = await client.get(f"{base}/readyz")
            assert ready.status_code == 200 and ready.json()["ready"] is True
            checks = ready.json()["checks"]
            assert {"database", "kafka", "outbox_relay", "consumers"} <= set(checks) and all(checks.values())
            metrics = (await client.get(f"{base}/metrics")).text
            processed = [
                float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith("ordermesh_messages_total{") and 'outcome="processed"' in line
            ]
            assert sum(processed) > 0, f"{name} reports no processed messages"
            if name == "orders":
                assert "ordermesh_outbox_published_total" in metrics


async def test_service_logs_are_json_and_carry_no_names_emails_phones_or_addresses(stack, recorder):
    order = demo_order(940_002)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    personal = [order.customer.email, order.customer.name, order.billing_address.line1, order.billing_address.phone]
    for name in SERVICES:
        text = stack.processes[name].log_path.read_text()
        for line in text.splitlines():
            json.loads(line)
        for value in personal:
            assert value not in text, f"{name}'s log contains personal data"
