"""Dead letters end to end on the real broker: staff list and inspect them (payload redacted), replay one after fixing
the shop's settings and the order completes, discard another with a recorded reason; bad selections are refused."""

import json
import uuid

import httpx

from ordermesh_contracts import order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ops_cli import cli
from support import eventually, evidence_wanted, fetch, keep_evidence, publish_raw


async def restart_payments(stack, *, stripe_key: str | None) -> None:
    """Restarts payments with or without its Stripe credentials."""
    process = stack.processes["payments"]
    process.stop()
    if stripe_key is None:
        process.env.pop("ORDERMESH_STRIPE_API_KEY", None)
    else:
        process.env["ORDERMESH_STRIPE_API_KEY"] = stripe_key
    await stack.restart_service("payments")


async def test_a_card_order_dead_lettered_for_a_shops_unusable_gateway_completes_when_replayed_after_staff_fix_the_settings(stack, recorder):
    shop = f"dlq-shop-{uuid.uuid4().hex[:6]}"
    on_stripe = cli(stack, "payments", "set-settings", "--shop", shop, "--card-gateway", "stripe")
    assert on_stripe.returncode == 0, on_stripe.stdout + on_stripe.stderr
    stripe_key = stack.processes["payments"].env["ORDERMESH_STRIPE_API_KEY"]
    await restart_payments(stack, stripe_key=None)
    try:
        order = demo_order(970_001, shop_id=shop)
        order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
        await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
        dlq = topics.ORDERS_EVENTS + ".dlq"
        await eventually(
            lambda: [m for m in recorder.on(dlq, **{"dlq.consumer_group": "ordermesh-payments"}) if m.key == str(order_id).encode()],
            timeout=90,
        )

        listed = cli(stack, "dlq", "list", "--topic", topics.ORDERS_EVENTS, "--since", "1h", "--json")
        assert listed.returncode == 0, listed.stderr
        [letter] = [x for x in json.loads(listed.stdout) if x["order_id"] == str(order_id)]
        assert (letter["status"], letter["type"], letter["group"], letter["error_class"]) == (
            "pending", "OrderAccepted", "ordermesh-payments", "PermanentError"
        )
        assert "stripe gateway, which is not configured" in letter["reason"]

        shown = cli(stack, "dlq", "show", letter["id"], "--json")
        assert shown.returncode == 0, shown.stderr
        [detail] = json.loads(shown.stdout)
        assert detail["headers"]["dlq.original_topic"] == topics.ORDERS_EVENTS
        assert detail["payload"]["order_id"] == str(order_id)
        assert order.customer.email not in shown.stdout and order.customer.name not in shown.stdout
        [payments_row] = await fetch(stack.service_dsns["payments"], "SELECT count(*) AS n FROM payments WHERE order_id = $1", order_id)
        assert payments_row["n"] == 0

        fixed = cli(stack, "payments", "set-settings", "--shop", shop, "--card-gateway", "sandbox")
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        replayed = cli(stack, "dlq", "replay", letter["id"], "--reason", "shop moved back to the sandbox gateway", "--by", "staff:ops")
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert "replayed 1 dead letters" in replayed.stdout

        await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)
        [payment] = await fetch(stack.service_dsns["payments"], "SELECT gateway, status FROM payments WHERE order_id = $1", order_id)
        assert (payment["gateway"], payment["status"]) == ("sandbox", "captured")
        assert len(recorder.on(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id)) == 1
        accepted = recorder.on(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=order_id)
        assert len({m.json()["event_id"] for m in accepted}) == 1
        assert [m for m in accepted if m.headers.get("ordermesh.replayed_from") == letter["id"].encode()]

        if evidence_wanted():
            story = cli(stack, "orders", "trace", str(order_id))
            keep_evidence("4-dead-letter-replayed", "\n".join([
                f"$ ordermesh dlq list --topic {topics.ORDERS_EVENTS} --since 1h   (the order's letter)",
                json.dumps({k: letter[k] for k in ("id", "status", "type", "group", "error_class", "reason")}, indent=1),
                "$ ordermesh payments set-settings --shop ... --card-gateway sandbox",
                f"$ ordermesh dlq replay {letter['id']} --reason 'shop moved back to the sandbox gateway' --by staff:ops",
                replayed.stdout, f"$ ordermesh orders trace {order_id}", story.stdout,
            ]))
        after = json.loads(cli(stack, "dlq", "list", "--topic", topics.ORDERS_EVENTS, "--status", "replayed", "--json").stdout)
        assert [x["id"] for x in after if x["order_id"] == str(order_id)] == [letter["id"]]
        [detail] = json.loads(cli(stack, "dlq", "show", letter["id"], "--json").stdout)
        assert detail["decision"]["by"] == "staff:ops" and detail["decision"]["action"] == "replayed"
    finally:
        await restart_payments(stack, stripe_key=stripe_key)


async def test_staff_discard_a_dead_letter_with_a_reason_that_is_recorded_and_bad_selections_are_refused(stack, recorder):
    marker = uuid.uuid4().hex
    await publish_raw(stack.bootstrap, topics.SHIPPING_CALLBACKS, f"not json {marker}".encode(), key=marker.encode())
    dlq = topics.SHIPPING_CALLBACKS + ".dlq"
    await eventually(lambda: [m for m in recorder.on(dlq) if m.key == marker.encode()], timeout=60)

    listed = json.loads(cli(stack, "dlq", "list", "--topic", dlq, "--status", "pending", "--json").stdout)
    [letter] = [x for x in listed if x["key"] == marker]
    assert letter["error_class"] == "InvalidJson"
    discarded = cli(stack, "dlq", "discard", letter["id"], "--reason", "test junk from a broken carrier script", "--by", "staff:ops")
    assert discarded.returncode == 0, discarded.stdout + discarded.stderr

    [detail] = json.loads(cli(stack, "dlq", "show", letter["id"], "--json").stdout)
    assert detail["decision"] == {
        "action": "discarded", "by": "staff:ops", "at": detail["decision"]["at"], "reason": "test junk from a broken carrier script"
    }
    pending = json.loads(cli(stack, "dlq", "list", "--topic", dlq, "--status", "pending", "--json").stdout)
    assert letter["id"] not in [x["id"] for x in pending]

    no_reason = cli(stack, "dlq", "discard", letter["id"], "--reason", "  ")
    assert no_reason.returncode == 2 and "a discard needs a reason" in no_reason.stderr
    nothing_selected = cli(stack, "dlq", "replay")
    assert nothing_selected.returncode == 2 and "name dead letters by id" in nothing_selected.stderr
    unknown = cli(stack, "dlq", "show", "shop.orders.v1.dlq:0:999999999")
    assert unknown.returncode == 1 and "no dead letter" in unknown.stdout
    not_an_id = cli(stack, "dlq", "show", "orders:x")
    assert not_an_id.returncode == 1 and "is not a dead letter id" in not_an_id.stdout
    bad_topic = cli(stack, "dlq", "list", "--topic", "nope.v9")
    assert bad_topic.returncode == 2 and "unknown topic" in bad_topic.stderr
    bad_since = cli(stack, "dlq", "list", "--since", "yesterday-ish")
    assert bad_since.returncode == 2 and "neither a duration" in bad_since.stderr



async def test_the_console_lists_and_shows_a_dead_letter_holding_a_lone_surrogate_with_it_escaped(stack, recorder):
    key = f"surrogate-{uuid.uuid4().hex[:8]}".encode()
    value = b'{"type": "OrderAccepted", "order_id": "\\udfff-order", "event_id": "\\ud800"}'
    await publish_raw(stack.bootstrap, topics.ORDERS_EVENTS, value, key, headers=[("type", b"OrderAccepted")])
    dlq = topics.ORDERS_EVENTS + ".dlq"
    await eventually(lambda: [m for m in recorder.on(dlq) if m.key == key], timeout=60)

    base = f"http://127.0.0.1:{stack.processes['console'].http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        login_csrf = (await client.get("/login")).cookies["om_login_csrf"]
        logged_in = await client.post(
            "/login", data={"csrf": login_csrf, "username": "admin", "password": stack.console_admin_password}
        )
        assert logged_in.status_code == 303, logged_in.text[:300]
        client.cookies.set("om_session", logged_in.cookies["om_session"])
        listed = await client.get("/operations/dead-letters", params={"topic": topics.ORDERS_EVENTS})
        assert listed.status_code == 200, listed.text[:300]
        assert "\\udfff-order" in listed.text
        row = listed.text.split(key.decode(), 1)[1]
        letter_id = row.split('href="/operations/dead-letters/', 1)[1].split('"', 1)[0]
        shown = await client.get(f"/operations/dead-letters/{letter_id}")
    assert shown.status_code == 200, shown.text[:300]
    assert "\\udfff-order" in shown.text and "\\ud800" in shown.text
