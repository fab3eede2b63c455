"""Tests of the outside-world sandboxes: payment gateway, warehouse and SMTP sink."""

import asyncio
import contextlib
import json
import smtplib
import socket
import time
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ordermesh_devstack.sandboxes import payment_gateway, warehouse
from ordermesh_servicekit.signing import sign, verify_signature
from ordermesh_devstack.sandboxes.smtp_sink import SmtpSink, read_mails

SECRET = "test-secret"


# ---------------------------------------------------------------- helpers


@contextlib.asynccontextmanager
async def gateway_client(**kwargs: float) -> AsyncIterator[httpx.AsyncClient]:
    app = payment_gateway.create_app(**kwargs)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


def new_key() -> str:
    return f"key-{uuid.uuid4()}"


def authorization(card_token: str = "tok_visa", amount: int = 1000, **extra: object) -> dict:
    return {"idempotency_key": new_key(), "order_id": "ord_1", "amount": amount,
            "currency": "EUR", "card_token": card_token, **extra}


async def authorized(client: httpx.AsyncClient, amount: int = 1000) -> str:
    response = await client.post("/v1/authorizations", json=authorization(amount=amount))
    assert response.status_code == 200
    return response.json()["authorization_id"]


async def captured(client: httpx.AsyncClient, amount: int = 1000) -> str:
    authorization_id = await authorized(client, amount)
    response = await client.post(f"/v1/authorizations/{authorization_id}/capture",
                                 json={"idempotency_key": new_key(), "amount": amount})
    assert response.status_code == 200
    return response.json()["capture_id"]


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with contextlib.closing(bound_socket()) as sock:
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port; yields its base URL."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done(), "uvicorn exited while starting"
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


class Receiver:
    """A shipping-service stand-in recording callbacks; answers 503 the first `failures` times."""

    def __init__(self, failures: int = 0, stall_s: float = 0.0) -> None:
        self.failures = failures
        self.stall_s = stall_s
        self.attempts: list[tuple[bytes, str]] = []
        self.clients: list[tuple[str, int]] = []
        self.delivered: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue()
        self.app = Starlette(routes=[Route("/callbacks/warehouse", self.callback, methods=["POST"])])

    async def callback(self, request: Request) -> JSONResponse:
        body = await request.body()
        header = request.headers.get("x-ordermesh-signature", "")
        self.attempts.append((body, header))
        self.clients.append((request.client.host, request.client.port))
        if len(self.attempts) == 1 and self.stall_s:
            await asyncio.sleep(self.stall_s)  # longer than the warehouse waits: it gives up and retries
        if len(self.attempts) <= self.failures:
            return JSONResponse({"error": "unavailable"}, status_code=503)
        await self.delivered.put((body, header))
        return JSONResponse({"ok": True})


def shipment_request(callback_url: str, shipment_id: str = "shp_1") -> dict:
    return {"idempotency_key": new_key(), "shipment_id": shipment_id, "order_id": "ord_1",
            "carrier": "dhl", "callback_url": callback_url,
            "lines": [{"sku": "SKU-1", "quantity": 2}]}


# ---------------------------------------------------------------- payment gateway


async def test_a_visa_token_is_authorized() -> None:
    async with gateway_client() as client:
        response = await client.post("/v1/authorizations", json=authorization(amount=2599))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "authorized"
    assert body["authorization_id"].startswith("auth_")
    assert (body["amount"], body["currency"]) == (2599, "EUR")


async def test_the_gateway_lists_its_own_authorizations_per_order_with_captured_amounts() -> None:
    async with gateway_client() as client:
        await client.post("/v1/authorizations", json=authorization(order_id="ord_other"))
        authorization_id = await authorized(client, 1500)
        await client.post(f"/v1/authorizations/{authorization_id}/capture",
                          json={"idempotency_key": new_key(), "amount": 1200})
        listed = (await client.get("/v1/authorizations", params={"order_id": "ord_1"})).json()["authorizations"]
        everything = (await client.get("/v1/authorizations")).json()["authorizations"]
    assert [(a["authorization_id"], a["amount"], a["status"], a["captured"]) for a in listed] == [
        (authorization_id, 1500, "captured", 1200)
    ]
    assert len(everything) == 2


@pytest.mark.parametrize(("token", "decline_code"), [
    ("tok_decline", "card_declined"),
    ("tok_insufficient_funds", "insufficient_funds"),
])
async def test_declining_tokens_get_402_with_their_decline_code(token: str, decline_code: str) -> None:
    async with gateway_client() as client:
        response = await client.post("/v1/authorizations", json=authorization(token))
    assert response.status_code == 402
    assert response.json() == {"status": "declined", "decline_code": decline_code}


async def test_an_unknown_tok_token_is_authorized() -> None:
    async with gateway_client() as client:
        response = await client.post("/v1/authorizations", json=authorization("tok_mastercard"))
    assert response.status_code == 200


async def test_replaying_an_idempotency_key_returns_the_same_authorization() -> None:
    async with gateway_client() as client:
        body = authorization()
        first = await client.post("/v1/authorizations", json=body)
        second = await client.post("/v1/authorizations", json=body)
    assert second.status_code == first.status_code == 200
    assert second.json() == first.json()


async def test_a_replayed_decline_keeps_its_status_code() -> None:
    async with gateway_client() as client:
        body = authorization("tok_decline")
        first = await client.post("/v1/authorizations", json=body)
        second = await client.post("/v1/authorizations", json=body)
    assert first.status_code == second.status_code == 402


async def test_reusing_an_idempotency_key_with_a_different_body_is_a_conflict() -> None:
    async with gateway_client() as client:
        body = authorization()
        await client.post("/v1/authorizations", json=body)
        response = await client.post("/v1/authorizations", json={**body, "amount": 1})
    assert response.status_code == 409


async def test_a_gateway_error_is_not_stored_so_a_retry_fails_again() -> None:
    async with gateway_client() as client:
        body = authorization("tok_error")
        first = await client.post("/v1/authorizations", json=body)
        second = await client.post("/v1/authorizations", json=body)
    assert first.status_code == second.status_code == 500
    assert second.json() == {"error": "gateway_error"}


async def test_a_retry_during_a_slow_authorization_gets_the_same_authorization() -> None:
    async with gateway_client(slow_delay_s=0.2) as client:
        body = authorization("tok_slow")
        started = time.monotonic()
        first, second = await asyncio.gather(
            client.post("/v1/authorizations", json=body),
            client.post("/v1/authorizations", json=body),
        )
    assert time.monotonic() - started >= 0.2
    assert first.status_code == second.status_code == 200
    assert first.json()["authorization_id"] == second.json()["authorization_id"]


@pytest.mark.parametrize("change", [
    {"amount": 0}, {"amount": "10"}, {"amount": True}, {"currency": "euro"},
    {"card_token": "4242424242424242"}, {"idempotency_key": ""}, {"order_id": None},
])
async def test_an_invalid_authorization_body_gets_400_with_a_reason(change: dict) -> None:
    async with gateway_client() as client:
        response = await client.post("/v1/authorizations", json={**authorization(), **change})
    assert response.status_code == 400
    assert response.json()["reason"]


async def test_a_body_that_is_not_json_gets_400() -> None:
    async with gateway_client() as client:
        response = await client.post("/v1/authorizations", content=b"{not json")
    assert response.status_code == 400


async def test_capturing_the_authorized_amount_succeeds() -> None:
    async with gateway_client() as client:
        authorization_id = await authorized(client, 1000)
        response = await client.post(f"/v1/authorizations/{authorization_id}/capture",
                                     json={"idempotency_key": new_key(), "amount": 800})
    assert response.status_code == 200
    body = response.json()
    assert body["capture_id"].startswith("cap_")
    assert (body["status"], body["amount"]) == ("captured", 800)


async def test_capturing_more_than_authorized_is_422() -> None:
    async with gateway_client() as client:
        authorization_id = await authorized(client, 1000)
        response = await client.post(f"/v1/authorizations/{authorization_id}/capture",
                                     json={"idempotency_key": new_key(), "amount": 1001})
    assert response.status_code == 422
    assert response.json() == {"error": "amount_exceeds_authorization"}


async def test_capturing_an_unknown_authorization_is_404() -> None:
    async with gateway_client() as client:
        response = await client.post("/v1/authorizations/auth_nope/capture",
                                     json={"idempotency_key": new_key(), "amount": 1})
    assert response.status_code == 404


async def test_capturing_a_voided_authorization_is_409() -> None:
    async with gateway_client() as client:
        authorization_id = await authorized(client)
        void = await client.post(f"/v1/authorizations/{authorization_id}/void",
                                 json={"idempotency_key": new_key()})
        response = await client.post(f"/v1/authorizations/{authorization_id}/capture",
                                     json={"idempotency_key": new_key(), "amount": 1})
    assert void.status_code == 200
    assert void.json() == {"status": "voided"}
    assert response.status_code == 409


async def test_voiding_after_capture_is_409() -> None:
    async with gateway_client() as client:
        authorization_id = await authorized(client)
        await client.post(f"/v1/authorizations/{authorization_id}/capture",
                          json={"idempotency_key": new_key(), "amount": 1000})
        response = await client.post(f"/v1/authorizations/{authorization_id}/void",
                                     json={"idempotency_key": new_key()})
    assert response.status_code == 409


async def test_refunds_succeed_until_the_captured_amount_is_used_up() -> None:
    async with gateway_client() as client:
        capture_id = await captured(client, 1000)
        first = await client.post("/v1/refunds", json={
            "idempotency_key": new_key(), "capture_id": capture_id, "amount": 600})
        replay_key = new_key()
        second = await client.post("/v1/refunds", json={
            "idempotency_key": replay_key, "capture_id": capture_id, "amount": 400})
        replayed = await client.post("/v1/refunds", json={
            "idempotency_key": replay_key, "capture_id": capture_id, "amount": 400})
        too_much = await client.post("/v1/refunds", json={
            "idempotency_key": new_key(), "capture_id": capture_id, "amount": 1})
    assert first.status_code == second.status_code == 200
    assert first.json()["refund_id"].startswith("re_")
    assert (first.json()["status"], first.json()["amount"]) == ("refunded", 600)
    assert replayed.json() == second.json()
    assert too_much.status_code == 422


async def test_the_gateway_health_check_answers_200() -> None:
    async with gateway_client() as client:
        response = await client.get("/healthz")
    assert response.status_code == 200


# ---------------------------------------------------------------- signing


def test_a_signature_verifies_with_the_same_secret_and_body() -> None:
    header = sign(SECRET, b"{}", 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature(SECRET, b"{}", header, now=1_700_000_100)


@pytest.mark.parametrize(("secret", "body", "now"), [
    ("other-secret", b"{}", 1_700_000_000),
    (SECRET, b"{ }", 1_700_000_000),
    (SECRET, b"{}", 1_700_000_301),
    (SECRET, b"{}", 1_699_999_699),
])
def test_a_signature_fails_with_another_secret_body_or_a_stale_timestamp(
    secret: str, body: bytes, now: int,
) -> None:
    assert not verify_signature(secret, body, sign(SECRET, b"{}", 1_700_000_000), now=now)


@pytest.mark.parametrize("header", ["", "garbage", "t=abc,v1=00", "v1=00", "t=1700000000"])
def test_a_malformed_signature_header_fails(header: str) -> None:
    assert not verify_signature(SECRET, b"{}", header, now=1_700_000_000)


# ---------------------------------------------------------------- warehouse


async def test_a_shipment_is_reported_shipped_with_a_valid_signature() -> None:
    receiver = Receiver()
    app = warehouse.create_app(secret=SECRET, ship_delay_s=0.2)
    async with serving(receiver.app) as receiver_url, serving(app) as warehouse_url:
        async with httpx.AsyncClient(base_url=warehouse_url) as client:
            request = shipment_request(f"{receiver_url}/callbacks/warehouse", "shp_signed")
            response = await client.post("/v1/shipments", json=request)
            replay = await client.post("/v1/shipments", json=request)
            body, header = await asyncio.wait_for(receiver.delivered.get(), 5)
    assert response.status_code == replay.status_code == 202
    assert response.json()["status"] == "accepted"
    assert response.json()["request_id"].startswith("wr_")
    assert replay.json() == response.json()
    assert verify_signature(SECRET, body, header, now=int(time.time()))
    event = json.loads(body)
    assert event["type"] == "shipped"
    assert event["request_id"] == response.json()["request_id"]
    assert (event["shipment_id"], event["order_id"], event["carrier"]) == ("shp_signed", "ord_1", "dhl")
    assert event["tracking_number"] == warehouse.tracking_number("shp_signed")
    assert len(event["tracking_number"]) == 12 and event["tracking_number"].isdigit()
    assert event["shipped_at"].endswith("+00:00")
    assert event["lines"] == [{"sku": "SKU-1", "quantity": 2}]
    assert len(receiver.attempts) == 1, "a replayed request must not ship twice"


async def first_callback(receiver: Receiver, app: Starlette) -> tuple[httpx.Response, bytes, str]:
    """One shipment requested of `app` with its callbacks to `receiver`: the answer, and the first callback delivered."""
    async with serving(receiver.app) as receiver_url, serving(app) as warehouse_url:
        async with httpx.AsyncClient(base_url=warehouse_url) as client:
            response = await client.post(
                "/v1/shipments", json=shipment_request(f"{receiver_url}/callbacks/warehouse"))
            body, header = await asyncio.wait_for(receiver.delivered.get(), 10)
    return response, body, header


async def test_a_callback_answered_503_is_retried_until_it_succeeds() -> None:
    receiver = Receiver(failures=2)
    response, body, header = await first_callback(receiver, warehouse.create_app(secret=SECRET, ship_delay_s=0.2))
    assert response.status_code == 202
    assert len(receiver.attempts) == 3
    assert len({attempt_body for attempt_body, _ in receiver.attempts}) == 1, "same event each time"
    assert verify_signature(SECRET, body, header, now=int(time.time()))


async def test_a_callback_that_times_out_is_retried_with_the_same_event() -> None:
    receiver = Receiver(stall_s=2.0)
    app = warehouse.create_app(secret=SECRET, ship_delay_s=0.1, callback_timeout_s=0.3)
    response, body, header = await first_callback(receiver, app)
    assert response.status_code == 202
    assert len(receiver.attempts) == 2
    assert receiver.attempts[0][0] == receiver.attempts[1][0] == body, "same event each time"
    assert verify_signature(SECRET, body, header, now=int(time.time()))


async def test_callbacks_go_out_over_one_kept_alive_connection() -> None:
    receiver = Receiver()
    app = warehouse.create_app(secret=SECRET, ship_delay_s=0.05, deliver_delay_s=0.05)
    async with serving(receiver.app) as receiver_url, serving(app) as warehouse_url:
        async with httpx.AsyncClient(base_url=warehouse_url) as client:
            for shipment_id in ("shp_a", "shp_b", "shp_c"):
                await client.post("/v1/shipments", json=shipment_request(f"{receiver_url}/callbacks/warehouse", shipment_id))
                for _ in range(2):  # shipped, then delivered, before the next request
                    await asyncio.wait_for(receiver.delivered.get(), 5)
    assert len(receiver.clients) == 6
    assert len(set(receiver.clients)) == 1, receiver.clients


async def test_a_cancelled_shipment_is_never_reported_and_a_shipped_one_cannot_be_cancelled() -> None:
    receiver = Receiver()
    app = warehouse.create_app(secret=SECRET, ship_delay_s=0.3)
    async with serving(receiver.app) as receiver_url, serving(app) as warehouse_url:
        async with httpx.AsyncClient(base_url=warehouse_url) as client:
            callback_url = f"{receiver_url}/callbacks/warehouse"
            cancelled = await client.post("/v1/shipments", json=shipment_request(callback_url, "shp_a"))
            shipped = await client.post("/v1/shipments", json=shipment_request(callback_url, "shp_b"))
            cancel = await client.post(f"/v1/shipments/{cancelled.json()['request_id']}/cancel")
            body, _ = await asyncio.wait_for(receiver.delivered.get(), 5)
            too_late = await client.post(f"/v1/shipments/{shipped.json()['request_id']}/cancel")
            await asyncio.sleep(0.3)
    assert cancel.status_code == 200
    assert cancel.json() == {"status": "cancelled"}
    assert json.loads(body)["shipment_id"] == "shp_b"
    assert too_late.status_code == 409
    assert too_late.json() == {"error": "already_shipped"}
    assert len(receiver.attempts) == 1


async def test_the_warehouse_rejects_invalid_requests_and_reused_keys() -> None:
    app = warehouse.create_app(secret=SECRET, ship_delay_s=30)
    async with serving(app) as warehouse_url:
        async with httpx.AsyncClient(base_url=warehouse_url) as client:
            request = shipment_request("http://127.0.0.1:9/callbacks")
            invalid = await client.post("/v1/shipments", json={**request, "lines": []})
            accepted = await client.post("/v1/shipments", json=request)
            reused = await client.post("/v1/shipments", json={**request, "carrier": "ups"})
            unknown = await client.post("/v1/shipments/wr_nope/cancel")
            health = await client.get("/healthz")
    assert invalid.status_code == 400
    assert accepted.status_code == 202
    assert reused.status_code == 409
    assert unknown.status_code == 404
    assert health.status_code == 200


# ---------------------------------------------------------------- SMTP sink


def make_mail(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "shop@ordermesh.test"
    message["To"] = to
    message["Subject"] = "Your order ord_1 — confirmed"
    message.set_content("Thank you for your order.\n")
    return message


def test_a_sent_mail_is_stored_with_its_envelope(tmp_path: Path) -> None:
    port = free_port()
    with SmtpSink(tmp_path / "mail", port):
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.send_message(make_mail("alice@example.test"), from_addr="bounces@ordermesh.test",
                              to_addrs=["alice@example.test", "audit@ordermesh.test"])
    mails = read_mails(tmp_path / "mail")
    assert len(mails) == 1
    mail = mails[0]
    assert mail["X-Envelope-From"] == "bounces@ordermesh.test"
    assert mail["X-Envelope-To"] == "alice@example.test, audit@ordermesh.test"
    assert mail["Subject"] == "Your order ord_1 — confirmed"
    assert mail.get_content() == "Thank you for your order.\n"
    assert list((tmp_path / "mail" / "tmp").iterdir()) == []


def test_recipients_starting_with_reject_get_550_when_the_switch_is_on(tmp_path: Path) -> None:
    port = free_port()
    with SmtpSink(tmp_path / "mail", port, reject_recipients=True):
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                smtp.send_message(make_mail("reject-me@example.test"))
            partly = smtp.send_message(make_mail("bob@example.test"),
                                       to_addrs=["bob@example.test", "Reject2@example.test"])
    code, reply = refused.value.recipients["reject-me@example.test"]
    assert (code, reply) == (550, b"5.1.1 mailbox unavailable")
    assert partly == {"Reject2@example.test": (550, b"5.1.1 mailbox unavailable")}
    [mail] = read_mails(tmp_path / "mail")
    assert mail["X-Envelope-To"] == "bob@example.test"


def test_reject_addresses_are_accepted_when_the_switch_is_off(tmp_path: Path) -> None:
    port = free_port()
    with SmtpSink(tmp_path / "mail", port):
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.send_message(make_mail("reject-me@example.test"))
    assert len(read_mails(tmp_path / "mail")) == 1


async def test_a_request_not_to_report_shipped_is_accepted_but_never_called_back() -> None:
    receiver = Receiver()
    app = warehouse.create_app(secret=SECRET, ship_delay_s=0.1)
    async with serving(receiver.app) as receiver_url, serving(app) as warehouse_url:
        async with httpx.AsyncClient(base_url=warehouse_url) as client:
            request = {**shipment_request(f"{receiver_url}/callbacks/warehouse", "shp_csv"), "report_shipped": False}
            response = await client.post("/v1/shipments", json=request)
            await asyncio.sleep(0.5)
    assert response.status_code == 202
    assert receiver.attempts == []


async def test_with_a_deliver_delay_a_delivered_callback_follows_with_the_cash_collected() -> None:
    receiver = Receiver()
    app = warehouse.create_app(secret=SECRET, ship_delay_s=0.1, deliver_delay_s=0.1)
    async with serving(receiver.app) as receiver_url, serving(app) as warehouse_url:
        async with httpx.AsyncClient(base_url=warehouse_url) as client:
            request = {**shipment_request(f"{receiver_url}/callbacks/warehouse", "shp_cod"), "cash_on_delivery": 4510}
            await client.post("/v1/shipments", json=request)
            shipped, _ = await asyncio.wait_for(receiver.delivered.get(), 5)
            delivered, header = await asyncio.wait_for(receiver.delivered.get(), 5)
    assert json.loads(shipped)["type"] == "shipped"
    event = json.loads(delivered)
    assert (event["type"], event["shipment_id"], event["cash_collected"]) == ("delivered", "shp_cod", 4510)
    assert verify_signature(SECRET, delivered, header, now=int(time.time()))


def warehouse_request(callback_url: str, shipment_id: str, *lines: tuple[str, int]) -> dict:
    return {**shipment_request(callback_url, shipment_id), "lines": [{"sku": s, "quantity": q} for s, q in lines]}


async def test_a_down_warehouse_answers_503_a_rejecting_one_422_and_neither_ships() -> None:
    receiver = Receiver()
    app = warehouse.create_app(secret=SECRET, ship_delay_s=0.1)
    async with serving(receiver.app) as receiver_url, serving(app) as warehouse_url:
        async with httpx.AsyncClient(base_url=warehouse_url) as client:
            callback = f"{receiver_url}/callbacks/warehouse"
            down = warehouse_request(callback, "shp_down", ("SKU-1", 1), ("DOWN-1", 1))
            answers = [await client.post("/v1/shipments", json=down) for _ in range(3)]
            rejected = await client.post("/v1/shipments", json=warehouse_request(callback, "shp_rej", ("REJECT-1", 1)))
            await asyncio.sleep(0.4)
    assert [a.status_code for a in answers] == [503, 503, 503]
    assert (rejected.status_code, rejected.json()["error"]) == (422, "unserviceable")
    assert receiver.attempts == []


async def test_a_flaky_request_fails_twice_then_is_taken_and_ships_once() -> None:
    receiver = Receiver()
    app = warehouse.create_app(secret=SECRET, ship_delay_s=0.1)
    async with serving(receiver.app) as receiver_url, serving(app) as warehouse_url:
        async with httpx.AsyncClient(base_url=warehouse_url) as client:
            request = warehouse_request(f"{receiver_url}/callbacks/warehouse", "shp_flaky", ("FLAKY-1", 2))
            answers = [await client.post("/v1/shipments", json=request) for _ in range(4)]
            body, _ = await asyncio.wait_for(receiver.delivered.get(), 5)
            await asyncio.sleep(0.3)
    assert [a.status_code for a in answers] == [503, 503, 202, 202]
    assert answers[2].json()["request_id"] == answers[3].json()["request_id"]
    assert json.loads(body)["shipment_id"] == "shp_flaky"
    assert len(receiver.attempts) == 1


async def test_a_slow_first_try_times_out_and_the_retry_gets_the_same_request_which_ships_once() -> None:
    receiver = Receiver()
    app = warehouse.create_app(secret=SECRET, ship_delay_s=0.3, stall_s=2)
    async with serving(receiver.app) as receiver_url, serving(app) as warehouse_url:
        async with httpx.AsyncClient(base_url=warehouse_url, timeout=0.5) as client:
            request = warehouse_request(f"{receiver_url}/callbacks/warehouse", "shp_slow", ("SLOW-1", 1))
            with pytest.raises(httpx.ReadTimeout):
                await client.post("/v1/shipments", json=request)
            retry = await client.post("/v1/shipments", json=request)
            body, _ = await asyncio.wait_for(receiver.delivered.get(), 5)
            await asyncio.sleep(0.5)
    assert (retry.status_code, retry.headers.get("Idempotent-Replayed")) == (202, "true")
    assert json.loads(body)["request_id"] == retry.json()["request_id"]
    assert len(receiver.attempts) == 1


async def test_a_partial_request_ships_in_two_parcels_with_their_own_tracking_numbers_then_is_delivered() -> None:
    receiver = Receiver()
    app = warehouse.create_app(secret=SECRET, ship_delay_s=0.1, deliver_delay_s=0.1)
    async with serving(receiver.app) as receiver_url, serving(app) as warehouse_url:
        async with httpx.AsyncClient(base_url=warehouse_url) as client:
            request = warehouse_request(f"{receiver_url}/callbacks/warehouse", "shp_part", ("PARTIAL-1", 3), ("SKU-2", 1))
            await client.post("/v1/shipments", json=request)
            events = [json.loads((await asyncio.wait_for(receiver.delivered.get(), 5))[0]) for _ in range(3)]
    first, second, delivered = events
    assert (first["parcel"], first["parcels"], first["lines"]) == (1, 2, [{"sku": "PARTIAL-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}])
    assert (second["parcel"], second["lines"]) == (2, [{"sku": "PARTIAL-1", "quantity": 1}])
    assert first["tracking_number"] == warehouse.tracking_number("shp_part")
    assert second["tracking_number"] == warehouse.tracking_number("shp_part", 2) != first["tracking_number"]
    assert all(int(n[:11]) % 7 == int(n[11]) for n in (first["tracking_number"], second["tracking_number"]))
    assert delivered["type"] == "delivered"


async def test_a_runaway_request_waits_for_its_cancel_which_is_answered_ok_and_then_ships_anyway() -> None:
    receiver = Receiver()
    app = warehouse.create_app(secret=SECRET, ship_delay_s=0.1, deliver_delay_s=0.1)
    async with serving(receiver.app) as receiver_url, serving(app) as warehouse_url:
        async with httpx.AsyncClient(base_url=warehouse_url) as client:
            request = warehouse_request(f"{receiver_url}/callbacks/warehouse", "shp_run", ("RUNAWAY-1", 1))
            accepted = await client.post("/v1/shipments", json=request)
            await asyncio.sleep(0.4)
            held = list(receiver.attempts)
            cancel = await client.post(f"/v1/shipments/{accepted.json()['request_id']}/cancel")
            body, _ = await asyncio.wait_for(receiver.delivered.get(), 5)
            await asyncio.sleep(0.4)
    assert held == []
    assert cancel.json() == {"status": "cancelled"}
    assert (json.loads(body)["type"], json.loads(body)["shipment_id"]) == ("shipped", "shp_run")
    assert len(receiver.attempts) == 1, "shipped once and never reported delivered"
