"""The HTTP endpoints of the running suite and how to call each one as its legitimate caller would (tokens, signatures),
with the hostile inputs the fuzz tests send them."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from ordermesh_devstack.stack import SHOPIFY_DEMO_DOMAIN
from ordermesh_servicekit.signing import sign

ALL_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


@dataclass(frozen=True)
class Endpoint:
    """One HTTP route: who may call it (`caller`), with which methods, reading which query parameters."""

    service: str
    path: str
    methods: tuple[str, ...] = ("GET",)
    caller: str = "staff"  # staff | admin | payments-provider | warehouse | shopify | anyone | console | console-anon
    params: tuple[str, ...] = ()

    @property
    def in_console(self) -> bool:
        """A page of the web console: answers in HTML, logged-in staff (`console`) or anyone (`console-anon`)."""
        return self.service == "console" and self.caller != "anyone"

    @property
    def name(self) -> str:
        return f"{self.service} {self.methods[0]} {self.path}"

    @property
    def takes_body(self) -> bool:
        return self.methods[0] in ("POST", "PUT")


HEALTH = ("/healthz", "/readyz", "/metrics")
ENDPOINTS: list[Endpoint] = [
    *(Endpoint(s, p, ("GET", "HEAD"), "anyone") for s in ("orders", "payments", "shipping", "points", "notify") for p in HEALTH),
    Endpoint("orders", "/webhooks/shopify/orders-create", ("POST",), "shopify"),
    Endpoint("orders", "/api/orders", params=("shop_id", "stage", "child_status", "channel", "payment_method", "flag",
                                             "flag_value", "open_task", "label", "q", "created_from", "created_to", "tz",
                                             "offset", "limit")),
    Endpoint("orders", "/api/orders/order", params=("order_id", "shop_id")),
    Endpoint("orders", "/api/orders/tasks", params=("shop_id", "kind", "offset", "limit")),
    Endpoint("orders", "/api/orders/shipping-fees", params=("shop_id",)),
    Endpoint("orders", "/api/orders/stuck", params=("shop_id", "older_than_seconds", "limit")),
    Endpoint("orders", "/api/orders/by-number", params=("external_order_no", "shop_id")),
    Endpoint("orders", "/api/orders/export.csv", params=("shop_id", "created_from", "created_to")),
    Endpoint("payments", "/callbacks/payments", ("POST",), "payments-provider"),
    Endpoint("payments", "/api/payments/order", params=("order_id",)),
    Endpoint("payments", "/api/payments/settings", params=("shop_id",)),
    Endpoint("shipping", "/callbacks/warehouse", ("POST",), "warehouse"),
    Endpoint("shipping", "/admin/stock", ("PUT",), "admin"),
    Endpoint("shipping", "/api/shipping/stock", params=("sku",)),
    Endpoint("shipping", "/api/shipping/shipments", params=("order_id",)),
    Endpoint("shipping", "/api/shipping/allocations", params=("order_id", "sku")),
    Endpoint("shipping", "/api/shipping/calendar", params=("shop_id",)),
    Endpoint("points", "/api/points/balance", params=("shop_id", "customer_id")),
    Endpoint("points", "/api/points/ledger", params=("shop_id", "customer_id")),
    Endpoint("points", "/api/points/order", params=("order_id",)),
    Endpoint("points", "/api/points/settings", params=("shop_id",)),
    Endpoint("points", "/api/points/expiry-runs", params=("shop_id",)),
    Endpoint("notify", "/api/notify/mails", params=("order_id",)),
    Endpoint("notify", "/api/notify/settings", params=("shop_id",)),
    *(Endpoint(s, "/api/outbox/failed", params=("status",)) for s in ("orders", "payments", "shipping", "points", "notify")),
    *(
        Endpoint(s, f"/api/outbox/failed/{action}", ("POST",))
        for s in ("orders", "payments", "shipping", "points", "notify")
        for action in ("retry", "discard")
    ),
]

ORDER_FILTERS = ("q", "shop_id", "channel", "stage", "child_status", "payment_method", "flag", "flag_value", "open_task",
                 "label", "created_from", "created_to")
CONSOLE_ENDPOINTS: list[Endpoint] = [
    *(Endpoint("console", p, ("GET", "HEAD"), "anyone") for p in HEALTH),
    Endpoint("console", "/static", ALL_METHODS, "anyone"),  # a mount: any method is redirected to /static/
    Endpoint("console", "/", caller="console"),
    Endpoint("console", "/login", ("GET", "HEAD", "POST"), "console-anon", params=("next",)),
    Endpoint("console", "/login", ("POST", "GET", "HEAD"), "console-anon"),
    Endpoint("console", "/logout", ("POST",), "console"),
    Endpoint("console", "/language", caller="console-anon", params=("to", "next")),
    Endpoint("console", "/orders", caller="console", params=(*ORDER_FILTERS, "page")),
    Endpoint("console", "/orders.csv", caller="console", params=(*ORDER_FILTERS, "encoding")),
    Endpoint("console", "/orders/bulk", ("POST", "GET", "HEAD"), "console"),  # GET: the order page of "bulk"
    Endpoint("console", "/orders/{order_id}", caller="console", params=("sent",)),
    Endpoint("console", "/orders/{order_id}/{action}", ("POST",), "console"),
    Endpoint("console", "/tasks", caller="console", params=("shop_id", "kind", "page")),
    Endpoint("console", "/operations/health", caller="console"),
    Endpoint("console", "/operations/stuck", caller="console", params=("older_than", "shop_id")),
    Endpoint("console", "/operations/dead-letters", caller="console", params=("topic", "status", "order_id")),
    Endpoint("console", "/operations/dead-letters/{letter_id}", caller="console"),
    Endpoint("console", "/operations/dead-letters/{letter_id}/{action}", ("POST",), "console"),
    Endpoint("console", "/accounts", ("GET", "HEAD", "POST"), "console"),
    Endpoint("console", "/accounts", ("POST", "GET", "HEAD"), "console"),
    Endpoint("console", "/accounts/{username}", ("POST",), "console"),
    Endpoint("console", "/settings", caller="console", params=("shop_id", "sent")),
    Endpoint("console", "/settings/{kind}", ("POST",), "console"),
]
ENDPOINTS += CONSOLE_ENDPOINTS
CONSOLE_PATH_VALUES = {
    "action": "edit", "letter_id": "shop.orders.v1.dlq:0:999999999", "username": "nobody-fuzz", "kind": "rules",
}
"""What the console's path parameters are filled with (`order_id` is the fuzz test's own order)."""


def console_forms(csrf: str) -> list[tuple[bytes, str]]:
    """Hostile forms carrying a valid CSRF token, so they reach the console's form readers: (body, content type)."""
    form = "application/x-www-form-urlencoded"
    token = quote(csrf, safe="")
    return [
        (f"csrf={token}&reason=a%00b".encode(), form),
        (f"csrf={token}&a%00b=1".encode(), form),
        (f"csrf={token}&reason=%ED%A0%80".encode(), form),
        (f"csrf={token}&reason=%FF%FE".encode(), form),
        (f"csrf={token}&reason=".encode() + b"x" * 200_000, form),
        (f"csrf={token}&".encode() + b"&".join(b"f%d=1" % i for i in range(13_000)), form),
        (f"csrf={token}&qty:0:A=99999999999999999999999&adjust_stock=no".encode(), form),
        (f"csrf={token}&qty:=1&qty:x:y=1&qty:9999999999:A=1&move:0:=1&adjust_stock=maybe".encode(), form),
        (f"csrf={token}&qty:0:A=%D9%A3&disc:0:A=-5&shipping_fee=1e400&adjust_stock=yes".encode(), form),
        (f"csrf={token}&csrf=other&rule_set=%7B%22groups%22%3A".encode(), form),
        (f"csrf={token}&rule_set=".encode() + quote("[" * 5000 + "]" * 5000).encode(), form),
        (f"csrf={token}&rule_set=".encode() + quote('{"groups": ' + "9" * 5000 + "}").encode(), form),
        (f"csrf={token}&action=teleport&scope=filter&order=x%7Cy".encode(), form),
        (f"csrf={token}&action=status&scope=selected&order=not-a-uuid%7Cshop%7C1".encode(), form),
        (f"csrf={token}&role=emperor&username=%00&password=short".encode(), form),
        (f"csrf={token}&other_order_ids=".encode() + b"x" * 5000, form),
        (b"--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n" + csrf.encode()
         + b"\r\n--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nhello\r\n--x--\r\n",
         "multipart/form-data; boundary=x"),
        (b"--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n" + csrf.encode(), "multipart/form-data; boundary=x"),
        (b"csrf=" + token.encode() + b"&reason=ok", "multipart/form-data"),
        (json.dumps({"csrf": csrf, "reason": "x"}).encode(), "application/json"),
    ]

HOSTILE_QUERY_VALUES = [
    "%00", "a%00b", "-1", "0", "99999999999999999999999999", "1e400", "%FF%FE", "%ED%A0%80", "%C2%B2", "NaN", "null", "[]",
    "x" * 5000, "", "2025-13-45", "..%2F..%2Fetc%2Fpasswd", "%0D%0AX-Injected:%201", "Asia%2FTokyo%00", "%E4%BA%AC",
    str(uuid.uuid4()), "{" + str(uuid.uuid4()) + "}", "'%20OR%201=1--",
]
HOSTILE_PATH_VALUES = ["%00", "a%00b", "%ED%A0%80", "%FF%FE", "x" * 3000, "..%2F..%2Fetc", "%E4%BA%AC", "-1", "{}", "%20"]
WORST_QUERY_VALUES = ["%00", "x" * 5000, "%ED%A0%80", "-1", "99999999999999999999999999"]
HOSTILE_QUERIES = [
    "limit=-1", "limit=1e400", "limit=0", "limit=1001", "offset=-5", "offset=99999999999999999999", "limit=1&limit=2",
    "%00=1", "&&&", "=", "a=%", "%ZZ=1", "tz=%00", "created_from=2025-02-30", "x" * 6000 + "=1",
]
DEEP = b"[" * 10_000 + b"]" * 10_000
HOSTILE_BODIES = [
    b"", b"not json", b"[]", b"[1,2]", b"1", b'"x"', b"null", b"true", b"{}", DEEP,
    b'{"a":' * 5000 + b"1" + b"}" * 5000, b"9" * 5000, b'{"amount": ' + b"9" * 5000 + b"}", b'{"amount": 1e400}',
    b'{"amount": NaN}', b"\xff\xfe{\x00}", b'{"a": "\xc3"}', b'{"event_id": "a\\u0000b"}', b'{"x": "\\ud800"}',
    b"\xef\xbb\xbf{}", b'{"a": 1, "a": 2}', json.dumps({"reference": "x" * 500_000}).encode(),
    json.dumps({"event_id": 1, "reference": [], "amount": "100", "currency": 5, "paid_at": {}}).encode(),
    json.dumps({"event_id": "e", "reference": "r", "amount": 10**13, "currency": "JPY", "paid_at": "2025-01-01T00:00:00Z"}).encode(),
    json.dumps({"type": "delivered", "event_id": str(uuid.uuid4()), "shipment_id": "x", "order_id": None}).encode(),
    json.dumps({"type": "shipped", "lines": [{"sku": "A", "quantity": 10**30}]}).encode(),
    json.dumps([{"sku": "A", "on_hand": 1e400}]).encode().replace(b"Infinity", b"1e400"),
    b'[{"sku": "A", "on_hand": 1e400}]', b'[{"sku": "A", "on_hand": -1}]', b'[{"sku": "A", "on_hand": "5"}]',
    b'[{"sku": "A\\u0000", "on_hand": 1}]', b'[{"sku": "A", "on_hand": 1, "extra": 1}]', b"[1]", b"[[]]",
    json.dumps({"id": 1, "line_items": "abc", "customer": [1], "currency": ["JPY"]}).encode(),
    json.dumps({"line_items": [{"price": "1e999999999", "tax_lines": [{"rate": "NaN"}]}]}).encode(),
]
HOSTILE_SIGNATURES = [
    "t=²,v1=00", "t=٣,v1=00", "t=" + "9" * 5000 + ",v1=00", "t=1,t=2,v1=00", "v1=00", ",", "=", "t=,v1=", "garbage",
]
CONTENT_TYPES = ["application/json", "text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", ""]


def encode_query(pairs: list[tuple[str, str]]) -> str:
    """A query string that carries any text, lone surrogates included, as percent-encoded bytes."""
    return "&".join(
        f"{quote(k.encode('utf-8', 'surrogatepass'), safe='')}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
        for k, v in pairs
    )


@dataclass
class Tally:
    """Requests sent and answers by class, per endpoint; fails the test at the first 5xx or 4xx without a reason."""

    sent: Counter = field(default_factory=Counter)
    server_errors: Counter = field(default_factory=Counter)
    statuses: dict[str, Counter] = field(default_factory=dict)
    seconds: Counter = field(default_factory=Counter)

    def check(self, endpoint: Endpoint, response: httpx.Response, what: str) -> httpx.Response:
        self.sent[endpoint.name] += 1
        self.seconds[endpoint.name] += response.elapsed.total_seconds()
        self.statuses.setdefault(endpoint.name, Counter())[response.status_code] += 1
        if endpoint.path == "/readyz" and response.status_code == 503 and response.json().get("ready") is False:
            return response  # not ready is what /readyz is for, whatever the request
        if response.status_code >= 500:
            self.server_errors[endpoint.name] += 1
            raise AssertionError(f"{endpoint.name} answered {response.status_code} to {what[:300]!r}: {response.text[:500]}")
        if endpoint.service == "console" and "text/html" in response.headers.get("content-type", ""):
            if 400 <= response.status_code < 500 and response.request.method != "HEAD":
                reason = response.text.partition('data-error="')[2].partition('"')[0]
                assert reason, (endpoint.name, what[:300], response.text[:300])
            return response
        if 400 <= response.status_code < 500 and response.request.method != "HEAD":
            try:
                body = response.json()
            except ValueError:
                raise AssertionError(f"{endpoint.name} answered {response.status_code} without JSON to {what[:300]!r}: {response.text[:300]}") from None
            assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], (endpoint.name, what[:300], body)
        return response

    def summary(self) -> str:
        lines = [f"{'endpoint':<58} {'sent':>6} {'5xx':>4} {'secs':>6}  statuses"]
        for name, sent in sorted(self.sent.items()):
            statuses = " ".join(f"{code}:{count}" for code, count in sorted(self.statuses[name].items()))
            lines.append(f"{name:<58} {sent:>6} {self.server_errors[name]:>4} {self.seconds[name]:>6.1f}  {statuses}")
        lines.append(f"{'total':<58} {sum(self.sent.values()):>6} {sum(self.server_errors.values()):>4}")
        return "\n".join(lines)


class Caller:
    """Calls the suite's endpoints as their legitimate caller: the staff or admin token, a fresh signature, Shopify's headers."""

    def __init__(self, stack, console_order_id: str = "") -> None:
        self.stack = stack
        self.client = httpx.Client(timeout=30)
        self.console_paths = {**CONSOLE_PATH_VALUES, "order_id": console_order_id or str(uuid.uuid4())}
        self._console_session: dict[str, str] | None = None

    def url(self, endpoint: Endpoint, query: str = "", path_values: dict[str, str] | None = None) -> str:
        path = endpoint.path.format(**{**self.console_paths, **(path_values or {})}) if endpoint.service == "console" else endpoint.path
        base = f"http://127.0.0.1:{self.stack.processes[endpoint.service].http_port}{path}"
        return f"{base}?{query}" if query else base

    def console_session(self) -> dict[str, str]:
        """A logged-in admin session of the console: its cookie, its CSRF token, and the login form's token."""
        if self._console_session is None:
            base = f"http://127.0.0.1:{self.stack.processes['console'].http_port}"
            with httpx.Client(base_url=base, timeout=30) as client:
                login_csrf = client.get("/login").cookies["om_login_csrf"]
                logged_in = client.post("/login", data={"csrf": login_csrf, "username": "admin", "password": self.stack.console_admin_password})
                assert logged_in.status_code == 303, logged_in.text[:300]
                session = logged_in.cookies["om_session"]
                page = client.get("/orders", cookies={"om_session": session}).text
                csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
                login_csrf = client.get("/login").cookies.get("om_login_csrf") or login_csrf
            self._console_session = {"session": session, "csrf": csrf, "login_csrf": login_csrf}
        return self._console_session

    def console_csrf(self, endpoint: Endpoint) -> str:
        """The CSRF token a form of this endpoint carries."""
        return self.console_session()["csrf" if endpoint.caller == "console" else "login_csrf"]

    def credentials(self, endpoint: Endpoint, body: bytes = b"") -> dict[str, str]:
        """The headers that let the request past authentication, for this body."""
        now = int(time.time())
        match endpoint.caller:
            case "staff":
                return {"Authorization": f"Bearer {self.stack.api_token}"}
            case "admin":
                return {"Authorization": f"Bearer {self.stack.admin_token}"}
            case "payments-provider":
                return {"X-Ordermesh-Signature": sign(self.stack.payment_callback_secret, body, now)}
            case "warehouse":
                return {"X-Ordermesh-Signature": sign(self.stack.warehouse_callback_secret, body, now)}
            case "console":
                return {"Cookie": f"om_session={self.console_session()['session']}"}
            case "console-anon":
                return {"Cookie": f"om_login_csrf={self.console_session()['login_csrf']}"}
            case "shopify":
                digest = hmac.new(self.stack.shopify_secret.encode(), body, hashlib.sha256).digest()
                return {
                    "X-Shopify-Shop-Domain": SHOPIFY_DEMO_DOMAIN, "X-Shopify-Topic": "orders/create",
                    "X-Shopify-Webhook-Id": f"fuzz-{uuid.uuid4()}", "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
                }
        return {}

    def send(self, endpoint: Endpoint, *, method: str | None = None, query: str = "", body: bytes | None = None,
             headers: dict | list | None = None, authorized: bool = True, content_type: str = "application/json",
             path_values: dict[str, str] | None = None) -> httpx.Response:
        method = method or endpoint.methods[0]
        sent_headers = dict(self.credentials(endpoint, body or b"")) if authorized else {}
        if content_type:
            sent_headers["Content-Type"] = content_type
        try:
            if isinstance(headers, list):
                return self.client.request(method, self.url(endpoint, query, path_values), content=body, headers=[*sent_headers.items(), *headers])
            return self.client.request(method, self.url(endpoint, query, path_values), content=body, headers={**sent_headers, **(headers or {})})
        finally:
            self.client.cookies.clear()  # the console sets cookies; each request carries only what it is sent with

    def close(self) -> None:
        self.client.close()
