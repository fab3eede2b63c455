"""Every HTTP endpoint of every running service under hostile input (a hand-written corpus and hypothesis): never a
5xx, and every 4xx says why in JSON."""

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from http_hostile import (
    ALL_METHODS,
    CONSOLE_ENDPOINTS,
    CONTENT_TYPES,
    ENDPOINTS,
    HOSTILE_BODIES,
    HOSTILE_PATH_VALUES,
    HOSTILE_QUERIES,
    HOSTILE_QUERY_VALUES,
    HOSTILE_SIGNATURES,
    WORST_QUERY_VALUES,
    Caller,
    Endpoint,
    Tally,
    console_forms,
    encode_query,
)
from ordermesh_contracts import Payment, PaymentMethod, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from support import eventually, fetch, publish_raw

FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
FUZZ_CONSOLE = settings(FUZZ, max_examples=15)
"""Fewer examples for the console's pages: each one reads several services (and some read Kafka)."""

_ROUTES = """
import json, importlib
routes = {s: [p for p, _ in importlib.import_module(f"ordermesh_{s}.app").create_app().routes]
          for s in ("orders", "payments", "shipping", "points", "notify")}
routes["console"] = [r.path for r in importlib.import_module("ordermesh_console.app").create_app().routes]
print(json.dumps(routes))
"""


@pytest.fixture(scope="module")
def tally():
    counts = Tally()
    yield counts
    print("\nhostile HTTP requests per endpoint\n" + counts.summary())


@pytest.fixture(scope="module")
async def console_order(stack) -> str:
    """An order of a shop of its own that the console's order pages and actions are fuzzed on (it waits for payment)."""
    order = demo_order(979_001, shop_id="fuzz-console")
    order = order.model_copy(update={"payment": Payment(method=PaymentMethod.BANK_TRANSFER)})
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await eventually(lambda: fetch(stack.service_dsns["orders"], "SELECT 1 FROM orders WHERE order_id = $1", order_id), timeout=120)
    return str(order_id)


@pytest.fixture(scope="module")
def caller(stack, console_order):
    calling = Caller(stack, console_order)
    yield calling
    calling.close()


def test_the_fuzzed_endpoints_are_every_http_route_of_every_service():
    routes = json.loads(subprocess.run([sys.executable, "-c", _ROUTES], check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    assert {(s, p) for s, paths in routes.items() for p in paths} == {(e.service, e.path) for e in ENDPOINTS}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_hand_written_hostile_requests_get_a_reasoned_4xx_or_a_success_never_a_5xx(caller, tally, endpoint: Endpoint):
    for method in ALL_METHODS:
        if method not in endpoint.methods:
            answer = tally.check(endpoint, caller.send(endpoint, method=method, body=b"{}"), f"method {method}")
            assert answer.status_code == 405
    tally.check(endpoint, caller.send(endpoint, headers={"X-Junk": "a" * 8000}, body=b"{}" if endpoint.takes_body else None), "8 kB header")
    tally.check(endpoint, caller.send(endpoint, headers=[("X-Junk", "1")] * 50, body=b"{}" if endpoint.takes_body else None), "50 headers")
    if endpoint.caller in ("staff", "admin"):
        _hostile_credentials(caller, tally, endpoint)
    if endpoint.caller == "console":
        _logged_out(caller, tally, endpoint)
        _hostile_path_values(caller, tally, endpoint)
    if endpoint.in_console and endpoint.takes_body and endpoint.path != "/logout":
        for body, content_type in console_forms(caller.console_csrf(endpoint)):
            answer = tally.check(endpoint, caller.send(endpoint, body=body, content_type=content_type), f"{content_type}: {body[:200]!r}")
            assert answer.status_code >= 400, (body[:200], answer.text[:300])
    if endpoint.takes_body:
        _hostile_bodies(caller, tally, endpoint)
    else:
        _hostile_queries(caller, tally, endpoint)


def _hostile_credentials(caller: Caller, tally: Tally, endpoint: Endpoint) -> None:
    token = caller.stack.api_token if endpoint.caller == "staff" else caller.stack.admin_token
    for authorization in (None, token, f"Basic {token}", "Bearer", "Bearer wrong", f"Bearer {token}x",
                          f"Token {token}", "Bearer " + "x" * 8000, f"Bearer  {token} extra"):
        headers = {"Authorization": authorization} if authorization is not None else {}
        answer = tally.check(endpoint, caller.send(endpoint, authorized=False, headers=headers, body=b"[]" if endpoint.takes_body else None), f"Authorization {str(authorization)[:40]}")
        assert answer.status_code == 401, (authorization, answer.text)
    duplicate = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    tally.check(endpoint, caller.send(endpoint, authorized=False, headers=duplicate, body=b"[]" if endpoint.takes_body else None), "two Authorization headers")
    latin1 = caller.client.request(endpoint.methods[0], caller.url(endpoint), headers=[(b"Authorization", b"Bearer \xff\xfe\xe9")])
    tally.check(endpoint, latin1, "non-ASCII Authorization")


def _logged_out(caller: Caller, tally: Tally, endpoint: Endpoint) -> None:
    """Without a live session every console page sends the browser to the login page, whatever else is wrong."""
    for cookie in (None, b"om_session=", b"om_session=" + b"x" * 4000, b"om_session=a%00b", b"om_session=\xff\xfe",
                   b"om_session=" + caller.console_session()["session"].encode() + b"x"):
        headers = {"Cookie": cookie} if cookie is not None else {}
        body = b"csrf=" + caller.console_session()["csrf"].encode() + b"&reason=x" if endpoint.takes_body else None
        answer = tally.check(endpoint, caller.send(endpoint, authorized=False, headers=headers, body=body,
                                                   content_type="application/x-www-form-urlencoded" if body else ""), f"Cookie {cookie!r:.40}")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), (cookie, answer.status_code)


def _hostile_path_values(caller: Caller, tally: Tally, endpoint: Endpoint) -> None:
    """Each path parameter of a console page with hostile text (the form, if any, carries a valid CSRF token)."""
    names = [part.strip("{}") for part in endpoint.path.split("/") if part.startswith("{")]
    body = b"csrf=" + caller.console_csrf(endpoint).encode() + b"&reason=x" if endpoint.takes_body else None
    for name in names:
        for value in HOSTILE_PATH_VALUES:
            answer = tally.check(endpoint, caller.send(endpoint, body=body, content_type="application/x-www-form-urlencoded",
                                                       path_values={name: value}), f"{name}={value[:40]}")
            assert answer.status_code >= 400, (name, value[:40], answer.status_code)


def _hostile_queries(caller: Caller, tally: Tally, endpoint: Endpoint) -> None:
    # every hostile value in some parameter, the worst few in every parameter (each parameter has its own parser)
    pairs = [(endpoint.params[i % len(endpoint.params)], value) for i, value in enumerate(HOSTILE_QUERY_VALUES)] if endpoint.params else []
    pairs += [(name, value) for name in endpoint.params for value in WORST_QUERY_VALUES]
    for name, value in pairs:
        tally.check(endpoint, caller.send(endpoint, query=f"{name}={value}", content_type=""), f"{name}={value}")
    for name in endpoint.params:
        tally.check(endpoint, caller.send(endpoint, query=f"{name}=a&{name}=b", content_type=""), f"duplicate {name}")
    for query in HOSTILE_QUERIES:
        tally.check(endpoint, caller.send(endpoint, query=query, content_type=""), query)
    for body in (b"\xff" * 100, b"[" * 10_000):
        tally.check(endpoint, caller.send(endpoint, body=body), "a body on a GET")


def _hostile_bodies(caller: Caller, tally: Tally, endpoint: Endpoint) -> None:
    for body in HOSTILE_BODIES:
        for content_type in CONTENT_TYPES[:2]:
            answer = tally.check(endpoint, caller.send(endpoint, body=body, content_type=content_type), body[:200].decode("latin-1"))
            assert answer.status_code >= 400 or endpoint.caller == "admin", (body[:200], answer.text[:300])
    for content_type in CONTENT_TYPES[2:]:
        tally.check(endpoint, caller.send(endpoint, body=b"a=1&b=2", content_type=content_type), f"content type {content_type}")
    if endpoint.caller in ("payments-provider", "warehouse"):
        for signature in HOSTILE_SIGNATURES:
            answer = tally.check(endpoint, caller.send(endpoint, body=b"{}", headers={"X-Ordermesh-Signature": signature.encode()}), signature)
            assert answer.status_code in (400, 401), (signature[:40], answer.text)
        twice = [("X-Ordermesh-Signature", "t=1,v1=00"), ("X-Ordermesh-Signature", "t=2,v1=00")]
        tally.check(endpoint, caller.send(endpoint, body=b"{}", headers=twice), "two signature headers")
    if endpoint.caller == "shopify":
        for header in ("X-Shopify-Hmac-Sha256", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id"):
            for value in ("", "x" * 4000, "\u00ff\u00fe"):
                answer = tally.check(endpoint, caller.send(endpoint, body=b"{}", headers={header: value.encode("latin-1")}), f"{header}: {value[:20]}")
                assert answer.status_code in (400, 401, 422)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
field_names = st.sampled_from(["event_id", "reference", "amount", "currency", "paid_at", "type", "shipment_id", "order_id",
                               "request_id", "carrier", "tracking_number", "shipped_at", "lines", "delivered_at",
                               "cash_collected", "sku", "warehouse", "on_hand", "id", "line_items", "customer",
                               "total_price", "currency", "billing_address"]) | st.text(max_size=10)
bodies = (
    st.binary(max_size=400)
    | json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    | st.dictionaries(field_names, json_values, max_size=8).map(lambda v: json.dumps(v).encode())
    | st.lists(st.dictionaries(field_names, json_values, max_size=4), max_size=3).map(lambda v: json.dumps(v).encode())
)
queries = st.lists(st.tuples(st.text(max_size=12), st.text(max_size=40)), max_size=5)


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.caller != "anyone"], ids=lambda e: e.name)
def test_hypothesis_generated_requests_never_get_a_5xx(caller, tally, endpoint: Endpoint):
    examples = FUZZ_CONSOLE if endpoint.in_console else FUZZ
    if endpoint.takes_body:

        @examples
        @given(body=bodies)
        def send_body(body: bytes) -> None:
            answer = tally.check(endpoint, caller.send(endpoint, body=body), body[:300].decode("latin-1"))
            assert answer.status_code >= 400 or endpoint.caller == "admin"

        send_body()
        return

    @examples
    @given(pairs=queries, known=st.lists(st.tuples(st.sampled_from(endpoint.params or ("x",)), st.text(max_size=40)), max_size=4))
    def send_query(pairs: list[tuple[str, str]], known: list[tuple[str, str]]) -> None:
        query = encode_query([*known, *pairs])
        tally.check(endpoint, caller.send(endpoint, query=query, content_type=""), query)

    send_query()


form_fields = st.sampled_from(["reason", "status", "stage", "note", "task_id", "mail_id", "qty:0:SKU-001", "was:0:SKU-001",
                               "disc:0:SKU-001", "move:0:SKU-001", "into", "other_order_ids", "shipping_fee", "adjust_stock",
                               "restore_stock", "cancel_payment", "notify_customer", "add_sku", "add_quantity", "shop_id",
                               "groups", "rule_set", "fee", "by_prefecture", "username", "password", "role", "active",
                               "value", "scope", "order"]) | st.text(max_size=12)
forms = st.lists(st.tuples(form_fields, st.text(max_size=60) | st.integers().map(str)), max_size=8)


@pytest.mark.parametrize("endpoint", [e for e in CONSOLE_ENDPOINTS if e.takes_body and e.path != "/logout"], ids=lambda e: e.name)
def test_hypothesis_generated_console_forms_with_a_valid_csrf_token_never_get_a_5xx(caller, tally, endpoint: Endpoint):
    csrf = caller.console_csrf(endpoint)

    @FUZZ_CONSOLE
    @given(fields=forms)
    def send_form(fields: list[tuple[str, str]]) -> None:
        if endpoint.path == "/orders/bulk":  # never a bulk action on the whole session's orders
            fields = [(k, v) for k, v in fields if k not in ("scope", "action")] + [("action", "memo"), ("scope", "selected")]
        body = encode_query([("csrf", csrf), *fields]).encode()
        tally.check(endpoint, caller.send(endpoint, body=body, content_type="application/x-www-form-urlencoded"), body[:300].decode())

    send_form()
