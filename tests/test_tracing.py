"""Tracing end to end: with the standard OTEL_* variables set, the five services export spans over OTLP/HTTP to a
receiver started here, and one order is one trace whose parent/child links cross the services (consumer spans under
the publishing service's producer span, outside calls under the consumer span that made them). Callbacks from the
warehouse and the payment provider continue the order's trace and correlation id; a Shopify webhook starts it."""

import json
import time
from datetime import datetime, timezone

import httpx
import pytest
from ordermesh_contracts import Payment, PaymentMethod, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_devstack.sandboxes.otlp_receiver import OtlpReceiver, ReceivedSpan, span_tree
from ordermesh_devstack.stack import SERVICES
from ordermesh_servicekit.signing import sign
from ordermesh_servicekit.tracing import tracing_requested
from ops_cli import cli
from support import (
    eventually, evidence_wanted, keep_evidence, log_lines_about, log_story, publish_raw, shopify_headers, shopify_order_body,
)


def _order_id_of(message) -> str | None:
    try:
        body = json.loads(message.value)
    except (TypeError, ValueError, RecursionError):
        return None
    return str(body.get("order_id")) if isinstance(body, dict) else None


async def restart_all(stack, env_changes: dict[str, str | None]) -> None:
    for name in SERVICES:
        process = stack.processes[name]
        process.stop()
        for key, value in env_changes.items():
            if value is None:
                process.env.pop(key, None)
            else:
                process.env[key] = value
        await stack.restart_service(name)


def test_tracing_is_off_unless_the_otel_variables_ask_for_it():
    assert not tracing_requested({})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_requested({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing_requested({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert not tracing_requested({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"})


@pytest.fixture(scope="module")
async def receiver(stack):
    """An OTLP receiver, with the five services restarted to export to it (and restarted without it afterwards)."""
    with OtlpReceiver() as running:
        otel = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": running.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        await restart_all(stack, otel)
        try:
            yield running
        finally:
            await restart_all(stack, {key: None for key in otel})


def messages_about(recorder, order_id) -> list:
    """Every message the suite published about the order (dead letters aside)."""
    return [m for m in recorder.messages if not m.topic.endswith(".dlq") and _order_id_of(m) == str(order_id)]


def trace_of(receiver: OtlpReceiver, trace_id: str) -> tuple[list[ReceivedSpan], dict[str, ReceivedSpan]]:
    spans = [s for s in receiver.spans if s.trace_id == trace_id]
    return spans, {s.span_id: s for s in spans}


async def grandparent(receiver: OtlpReceiver, span: ReceivedSpan) -> ReceivedSpan:
    """The span's parent's parent, once both have arrived: each service exports its spans in batches of its own, so a
    trace's spans arrive in any order."""

    def found() -> ReceivedSpan | None:
        by_id = trace_of(receiver, span.trace_id)[1]
        parent = by_id.get(span.parent_id)
        return by_id.get(parent.parent_id) if parent is not None else None

    return await eventually(found, timeout=30)


async def settled(receiver: OtlpReceiver, trace_id: str) -> list[ReceivedSpan]:
    """The trace's spans once no new one arrived for two seconds (at most 30 s): the whole tree, for the evidence."""
    seen = [-1]

    def quiet() -> bool:
        count = len(trace_of(receiver, trace_id)[0])
        done, seen[0] = count == seen[0], count
        return done

    await eventually(quiet, timeout=30, interval=2)
    return trace_of(receiver, trace_id)[0]


async def whole_trace(receiver, trace_id: str):
    """The spans of a trace with its one root, once the SMTP call is in and every other span's parent has arrived
    (each service exports in batches of its own, so a child can reach the receiver before its parent)."""

    def with_one_root():
        spans, by_id = trace_of(receiver, trace_id)
        roots = [s for s in spans if s.parent_id not in by_id]
        return (spans, by_id, roots[0]) if len(roots) == 1 and any(s.name.startswith("smtp") for s in spans) else None

    try:
        return await eventually(with_one_root, timeout=30)
    except AssertionError:
        spans, by_id = trace_of(receiver, trace_id)
        roots = [(s.service, s.kind, s.name) for s in spans if s.parent_id not in by_id]
        raise AssertionError(f"trace {trace_id} has {len(roots)} roots after 30 s: {roots}") from None


async def test_one_order_is_one_trace_across_the_five_services_exported_over_otlp(stack, recorder, receiver):
    order = demo_order(990_401)
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=180)

    def consumer_spans_of_order():
        found = [s for s in receiver.spans if s.kind == "consumer" and s.attributes.get("ordermesh.order_id") == str(order_id)]
        return found if {s.service for s in found} == {f"ordermesh-{n}" for n in SERVICES} else None

    about_order = await eventually(consumer_spans_of_order, timeout=60, interval=0.5)
    [trace_id] = {s.trace_id for s in about_order}
    spans, by_id, root = await whole_trace(receiver, trace_id)
    assert (root.service, root.kind, root.name) == ("ordermesh-orders", "consumer", f"{topics.SHOP_ORDERS} process ShopOrderSubmitted")

    crossing = [
        (by_id[s.parent_id].service, s.service)
        for s in spans
        if s.kind == "consumer" and s.parent_id in by_id and by_id[s.parent_id].service != s.service
    ]
    assert {("ordermesh-orders", f"ordermesh-{n}") for n in ("payments", "shipping", "points", "notify")} <= set(crossing)
    assert {("ordermesh-payments", "ordermesh-orders"), ("ordermesh-shipping", "ordermesh-orders")} <= set(crossing)
    for s in spans:
        if s.kind == "consumer" and s.parent_id in by_id:
            assert by_id[s.parent_id].kind == "producer", f"{s.name} hangs under {by_id[s.parent_id].name}"
    for target, service in (("gateway", "ordermesh-payments"), ("warehouse", "ordermesh-shipping"), ("smtp", "ordermesh-notify")):
        calls = [s for s in spans if s.kind == "client" and s.name.startswith(target)]
        assert calls, f"no {target} call in the order's trace"
        assert all(by_id[c.parent_id].service == service and by_id[c.parent_id].kind == "consumer" for c in calls)

    callbacks = [s for s in spans if s.kind == "consumer" and s.name.startswith(topics.SHIPPING_CALLBACKS)]
    assert callbacks, "the warehouse's callback left the order's trace"
    for callback in callbacks:
        ingress = by_id[by_id[callback.parent_id].parent_id]
        assert (ingress.name, ingress.kind) == ("POST /callbacks/warehouse", "server")
        assert by_id[ingress.parent_id].kind == "consumer"

    about = messages_about(recorder, order_id)
    expected_topics = {topics.ORDERS_EVENTS, topics.PAYMENTS_EVENTS, topics.SHIPPING_EVENTS, topics.SHIPPING_CALLBACKS}
    assert {m.topic for m in about} >= expected_topics
    assert len({m.json()["correlation_id"] for m in about}) == 1, "a message about the order has another correlation id"
    assert {m.headers["traceparent"].decode().split("-")[1] for m in about if m.topic != topics.SHOP_ORDERS} == {trace_id}
    if evidence_wanted():
        keep_evidence("1-logs-of-one-order", f"grep {order_id} across the five logs:\n{log_story(log_lines_about(stack, order_id))}")
        traced = cli(stack, "orders", "trace", str(order_id))
        keep_evidence("2-orders-trace", f"$ ordermesh orders trace {order_id}\n{traced.stdout}{traced.stderr}")
        spans = await settled(receiver, trace_id)
        keep_evidence("3-span-tree", f"order {order_id}: trace {trace_id}, {len(spans)} spans\n{span_tree(spans)}")


async def test_a_prepaid_orders_payment_callback_continues_the_orders_trace_and_correlation(stack, recorder, receiver):
    order = demo_order(990_402).model_copy(update={"payment": Payment(method=PaymentMethod.BANK_TRANSFER)})
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    [requested] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentRequested", order_id=order_id, timeout=120)
    body = json.dumps({
        "event_id": f"evt_trace_{order.external_order_no}", "reference": requested.json()["reference"],
        "amount": order.charges.total, "currency": "JPY", "paid_at": datetime.now(timezone.utc).isoformat(),
    }).encode()
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(
            f"http://127.0.0.1:{stack.processes['payments'].http_port}/callbacks/payments", content=body,
            headers={"X-Ordermesh-Signature": sign(stack.payment_callback_secret, body, int(time.time()))},
        )
    assert answer.status_code == 202, answer.text
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentReceived", order_id=order_id, timeout=120)

    def callback_span():
        return next((s for s in receiver.spans if s.kind == "consumer" and s.name.endswith("process ProviderPaymentReported")
                     and s.attributes.get("ordermesh.order_id") == str(order_id)), None)

    handled = await eventually(callback_span, timeout=60, interval=0.5)
    intake = await eventually(lambda: next((s for s in receiver.spans if s.name.endswith("process ShopOrderSubmitted")
                                             and s.attributes.get("ordermesh.order_id") == str(order_id)), None), timeout=30)
    assert handled.trace_id == intake.trace_id
    ingress = await grandparent(receiver, handled)
    assert (ingress.service, ingress.name, ingress.kind) == ("ordermesh-payments", "POST /callbacks/payments", "server")
    about = messages_about(recorder, order_id)
    assert {m.topic for m in about} >= {topics.PAYMENTS_CALLBACKS, topics.PAYMENTS_EVENTS}
    assert len({m.json()["correlation_id"] for m in about}) == 1


async def test_a_shopify_webhook_order_starts_its_trace_at_the_webhook(stack, recorder, receiver):
    shopify_id = 990_403_000_000_000_001
    body = shopify_order_body(shopify_id)
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(
            f"http://127.0.0.1:{stack.processes['orders'].http_port}/webhooks/shopify/orders-create", content=body,
            headers=shopify_headers(stack.shopify_secret, body, f"wh-trace-{shopify_id}"),
        )
    assert answer.status_code == 200, answer.text
    order_id = order_id_for("demo-shop", "shopify", str(shopify_id))

    def intake_span():
        return next((s for s in receiver.spans if s.name.endswith("process ShopOrderSubmitted")
                     and s.attributes.get("ordermesh.order_id") == str(order_id)), None)

    intake = await eventually(intake_span, timeout=120, interval=0.5)
    webhook = await grandparent(receiver, intake)
    assert (webhook.service, webhook.name, webhook.kind) == ("ordermesh-orders", "POST /webhooks/shopify/orders-create", "server")
    assert webhook.parent_id not in trace_of(receiver, intake.trace_id)[1]


async def test_a_credit_check_decided_by_the_poll_stays_in_the_orders_trace_and_correlation(stack, recorder, receiver):
    base = demo_order(990_404)
    customer = base.customer.model_copy(update={"customer_id": f"credit-pending-{base.external_order_no[-6:]}"})
    order = base.model_copy(update={"customer": customer, "payment": Payment(method=PaymentMethod.DEFERRED)})
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="CreditCheckApproved", order_id=order_id, timeout=120)

    def span_named(suffix: str):
        return lambda: next((s for s in receiver.spans if s.name.endswith(suffix)
                             and s.attributes.get("ordermesh.order_id") == str(order_id)), None)

    handled = await eventually(span_named("process CreditCheckApproved"), timeout=60, interval=0.5)
    intake = await eventually(span_named("process ShopOrderSubmitted"), timeout=30)
    assert handled.trace_id == intake.trace_id
    poll = await grandparent(receiver, handled)
    assert (poll.service, poll.name) == ("ordermesh-payments", "poll credit check")
    assert len({m.json()["correlation_id"] for m in messages_about(recorder, order_id)}) == 1
