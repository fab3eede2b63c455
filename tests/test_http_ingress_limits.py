"""The ingress limits on the running suite: bodies over the limit get 413, a replayed warehouse callback 409, staff
APIs take only the Bearer scheme, and amounts beyond the contract's range are refused at the door (422)."""

import json
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx

from ordermesh_console.pages.common import MAX_BODY_BYTES as CONSOLE_LIMIT
from ordermesh_contracts import MAX_MINOR_UNITS, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_servicekit.settings import ServiceSettings
from ordermesh_servicekit.signing import sign
from http_hostile import ENDPOINTS, Caller
from support import fetch, publish_raw

SHOPIFY_FIXTURE = Path(__file__).resolve().parent.parent / "services/orders/tests/data/shopify_orders_create.json"
LIMIT = ServiceSettings.model_fields["http_max_body_bytes"].default
BODY_ENDPOINTS = [e for e in ENDPOINTS if e.takes_body]
STAFF_ENDPOINTS = [e for e in ENDPOINTS if e.caller == "staff"]


async def test_a_body_over_the_configured_limit_gets_413_whether_declared_or_streamed_on_every_body_endpoint(stack):
    caller = Caller(stack)
    try:
        for endpoint in BODY_ENDPOINTS:
            # The console takes larger forms (bulk selections) than a service's ingress and answers in HTML.
            limit, in_html = (CONSOLE_LIMIT, True) if endpoint.service == "console" else (LIMIT, False)

            def chunks():
                for _ in range(limit // 65536 + 2):
                    yield b"x" * 65536

            declared = caller.send(endpoint, body=b'{"pad": "' + b"x" * limit + b'"}')
            streamed = caller.client.request(
                endpoint.methods[0], caller.url(endpoint), content=chunks(), headers=caller.credentials(endpoint)
            )
            under = caller.send(endpoint, body=b'{"pad": "' + b"x" * (limit - 100) + b'"}')
            assert "chunked" in streamed.request.headers.get("transfer-encoding", "")
            assert (declared.status_code, streamed.status_code) == (413, 413), (endpoint.name, declared.text[:300], streamed.text[:300])
            if in_html:
                assert "body_too_large" in declared.text or str(limit) in declared.text, (endpoint.name, declared.text[:300])
                assert under.status_code in (400, 403, 422), (endpoint.name, under.status_code, under.text[:300])
            else:
                assert declared.json()["error"] == "body_too_large" and streamed.json()["limit"] == limit, endpoint.name
                assert under.status_code in (400, 422), (endpoint.name, under.status_code, under.text[:300])
    finally:
        caller.close()


async def test_every_staff_api_takes_the_bearer_scheme_and_refuses_a_bare_token(stack):
    async with httpx.AsyncClient(timeout=30) as client:
        for endpoint in [*STAFF_ENDPOINTS, *(e for e in ENDPOINTS if e.caller == "admin")]:
            token = stack.api_token if endpoint.caller == "staff" else stack.admin_token
            url = f"http://127.0.0.1:{stack.processes[endpoint.service].http_port}{endpoint.path}"
            bare = await client.request(endpoint.methods[0], url, headers={"Authorization": token}, content=b"[]")
            bearer = await client.request(endpoint.methods[0], url, headers={"Authorization": f"Bearer {token}"}, content=b"[]")
            assert (bare.status_code, bare.json()["error"]) == (401, "unauthorized"), endpoint.name
            assert bearer.status_code != 401 and bearer.status_code < 500, (endpoint.name, bearer.status_code, bearer.text)


async def test_amounts_beyond_the_contract_range_are_refused_at_the_ingress_with_422_and_nothing_is_queued(stack, recorder):
    caller = Caller(stack)
    [payments, warehouse, shopify] = [next(e for e in ENDPOINTS if e.caller == c) for c in ("payments-provider", "warehouse", "shopify")]
    fixture = json.loads(SHOPIFY_FIXTURE.read_text())
    try:
        for amount in (MAX_MINOR_UNITS + 1, 10**30, -(10**13)):
            paid = {"event_id": f"evt_big_{uuid.uuid4().hex}", "reference": "OM-000000000000", "amount": amount, "currency": "JPY",
                    "paid_at": "2025-03-14T03:00:00+00:00"}
            answer = caller.send(payments, body=json.dumps(paid).encode())
            assert answer.status_code == 422 and any(r.startswith("amount") for r in answer.json()["reasons"]), answer.text
            delivered = {"type": "delivered", "event_id": str(uuid.uuid4()), "shipment_id": str(uuid.uuid4()),
                         "order_id": str(uuid.uuid4()), "request_id": "wh-1", "delivered_at": "2025-03-14T03:00:00+00:00",
                         "cash_collected": amount}
            answer = caller.send(warehouse, body=json.dumps(delivered).encode())
            assert answer.status_code == 422 and any(r.startswith("cash_collected") for r in answer.json()["reasons"]), answer.text
            order = {**fixture, "id": 880_000_000 + len(str(amount)), "total_price": str(amount)}
            answer = caller.send(shopify, body=json.dumps(order).encode())
            assert answer.status_code == 422 and any("total_price" in r for r in answer.json()["reasons"]), answer.text
        within = {"event_id": f"evt_max_{uuid.uuid4().hex}", "reference": "OM-000000000000", "amount": MAX_MINOR_UNITS,
                  "currency": "JPY", "paid_at": "2025-03-14T03:00:00+00:00"}
        assert caller.send(payments, body=json.dumps(within).encode()).status_code == 404  # valid, but no such reference
    finally:
        caller.close()
    assert not [m for m in recorder.on(topics.SHOP_ORDERS) if str(m.json().get("external_order_no", "")).startswith("8800000")]


async def test_a_replayed_warehouse_callback_is_refused_with_409_and_queued_once(stack, recorder):
    order = demo_order(960_001)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    [shipped] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id, timeout=120)
    [shipment] = await fetch(stack.service_dsns["shipping"],
                             "SELECT shipment_id, order_id, warehouse_request_id FROM shipments WHERE shipment_id = $1",
                             uuid.UUID(shipped.json()["shipment_id"]))
    report = json.dumps({
        "event_id": str(uuid.uuid4()), "type": "delivered", "request_id": shipment["warehouse_request_id"],
        "shipment_id": str(shipment["shipment_id"]), "order_id": str(shipment["order_id"]),
        "delivered_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cash_collected": None,
    }).encode()
    url = f"http://127.0.0.1:{stack.processes['shipping'].http_port}/callbacks/warehouse"
    async with httpx.AsyncClient(timeout=30) as client:
        answers = []
        for _ in range(3):
            headers = {"X-Ordermesh-Signature": sign(stack.warehouse_callback_secret, report, int(time.time())),
                       "Content-Type": "application/json"}
            answers.append(await client.post(url, content=report, headers=headers))
        unknown = json.loads(report) | {"event_id": str(uuid.uuid4()), "shipment_id": str(uuid.uuid4())}
        unknown_body = json.dumps(unknown).encode()
        stranger = await client.post(url, content=unknown_body, headers={
            "X-Ordermesh-Signature": sign(stack.warehouse_callback_secret, unknown_body, int(time.time()))})
    assert [a.status_code for a in answers] == [202, 409, 409]
    assert answers[1].json() == {"error": "replayed_event", "reason": "this callback was accepted before",
                                 "event_id": json.loads(report)["event_id"]}
    assert (stranger.status_code, stranger.json()["error"]) == (404, "unknown_shipment")
    queued = await recorder.wait_for(topics.SHIPPING_CALLBACKS, event_id=json.loads(report)["event_id"], timeout=60)
    assert len(queued) == 1 and queued[0].json()["type"] == "WarehouseDeliveryReported"

