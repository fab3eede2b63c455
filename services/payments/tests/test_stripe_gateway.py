"""The Stripe adapter against localstripe, a stateful fake of the Stripe API run as a local process.

localstripe sits behind ordermesh_devstack.localstripe's front, which adds the two Stripe behaviours localstripe
lacks (Idempotency-Key replay, refunds limited to what is left); everything else is localstripe's own behaviour.
localstripe declines a charge only for card 4000000000000341 (`pm_card_chargeCustomerFail`), with code card_declined.
"""

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from ordermesh_devstack.localstripe import TEST_API_KEY, LocalStripe
from ordermesh_payments.adapters.stripe_gateway import StripeGateway
from ordermesh_servicekit.consuming import PermanentError, TransientError
from ordermesh_servicekit.outside import OutsideCalls
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

AMOUNT = 9660


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    with LocalStripe(tmp_path_factory.mktemp("localstripe")) as running:
        yield running


@pytest.fixture
async def gateway(localstripe: LocalStripe) -> AsyncIterator[StripeGateway]:
    gateway = StripeGateway(TEST_API_KEY, calls=OutsideCalls(), api_base=localstripe.api_base, timeout_seconds=10)
    yield gateway
    await gateway.aclose()


def key() -> str:
    return str(uuid.uuid4())


def stripe_get(localstripe: LocalStripe, path: str, **params: str | int) -> dict:
    response = httpx.get(f"{localstripe.api_base}{path}", params=params, auth=(TEST_API_KEY, ""))
    response.raise_for_status()
    return response.json()


def intents_of_order(localstripe: LocalStripe, order_id: str) -> list[dict]:
    listed = stripe_get(localstripe, "/v1/payment_intents", limit=100)
    assert not listed["has_more"]
    return [intent for intent in listed["data"] if intent["metadata"].get("ordermesh_order_id") == order_id]


async def authorize(gateway: StripeGateway, *, order_id: str | None = None, card: str = "pm_card_visa", idempotency_key: str | None = None):
    return await gateway.authorize(
        idempotency_key=idempotency_key or key(), order_id=order_id or str(uuid.uuid4()),
        amount=AMOUNT, currency="JPY", card_token=card,
    )


async def test_an_authorization_is_an_uncaptured_payment_intent_and_a_full_capture_takes_all_of_it(
    gateway: StripeGateway, localstripe: LocalStripe
) -> None:
    order_id = str(uuid.uuid4())
    authorized = await authorize(gateway, order_id=order_id)
    assert (authorized.approved, authorized.amount) == (True, AMOUNT)
    [intent] = intents_of_order(localstripe, order_id)
    assert (intent["id"], intent["status"], intent["capture_method"], intent["amount"], intent["currency"]) == (
        authorized.reference, "requires_capture", "manual", AMOUNT, "jpy"
    )

    captured = await gateway.capture(idempotency_key=key(), authorization_id=authorized.reference, amount=AMOUNT)

    assert (captured.approved, captured.amount) == (True, AMOUNT)
    assert captured.reference.startswith("ch_")
    intent = stripe_get(localstripe, f"/v1/payment_intents/{authorized.reference}")
    assert intent["status"] == "succeeded"
    assert (intent["latest_charge"]["id"], intent["latest_charge"]["captured"]) == (captured.reference, True)
    assert intent["latest_charge"]["amount_refunded"] == 0


async def test_a_partial_capture_takes_only_the_amount_asked_and_releases_the_rest(
    gateway: StripeGateway, localstripe: LocalStripe
) -> None:
    authorized = await authorize(gateway)

    captured = await gateway.capture(idempotency_key=key(), authorization_id=authorized.reference, amount=6000)

    assert (captured.approved, captured.amount) == (True, 6000)
    charge = stripe_get(localstripe, f"/v1/charges/{captured.reference}")
    # localstripe books the released part of a partial capture as a refund of the charge.
    assert (charge["amount"], charge["amount_refunded"], charge["captured"]) == (AMOUNT, AMOUNT - 6000, True)


async def test_a_void_cancels_the_payment_intent_and_a_second_void_is_refused(
    gateway: StripeGateway, localstripe: LocalStripe
) -> None:
    authorized = await authorize(gateway)

    voided = await gateway.void(idempotency_key=key(), authorization_id=authorized.reference)
    again = await gateway.void(idempotency_key=key(), authorization_id=authorized.reference)

    assert (voided.approved, voided.reference) == (True, authorized.reference)
    assert stripe_get(localstripe, f"/v1/payment_intents/{authorized.reference}")["status"] == "canceled"
    assert (again.approved, again.reason) == (False, "void_refused")


async def test_refunds_return_part_then_the_rest_of_a_capture_and_never_more_than_was_captured(
    gateway: StripeGateway, localstripe: LocalStripe
) -> None:
    authorized = await authorize(gateway)
    captured = await gateway.capture(idempotency_key=key(), authorization_id=authorized.reference, amount=AMOUNT)

    first = await gateway.refund(idempotency_key=key(), capture_id=captured.reference, amount=4000)
    too_much = await gateway.refund(idempotency_key=key(), capture_id=captured.reference, amount=AMOUNT - 4000 + 1)
    rest = await gateway.refund(idempotency_key=key(), capture_id=authorized.reference, amount=AMOUNT - 4000)
    beyond = await gateway.refund(idempotency_key=key(), capture_id=captured.reference, amount=1)

    assert (first.approved, first.amount) == (True, 4000)
    assert (too_much.approved, too_much.reason) == (False, "amount_too_large")
    assert (rest.approved, rest.amount) == (True, AMOUNT - 4000)
    assert (beyond.approved, beyond.reason) == (False, "charge_already_refunded")
    refunds = stripe_get(localstripe, "/v1/refunds", charge=captured.reference, limit=100)["data"]
    assert sorted((refund["id"], refund["amount"]) for refund in refunds) == sorted(
        [(first.reference, 4000), (rest.reference, AMOUNT - 4000)]
    )


async def test_a_declined_card_is_a_refusal_with_stripes_reason_and_leaves_nothing_to_capture(
    gateway: StripeGateway, localstripe: LocalStripe
) -> None:
    order_id = str(uuid.uuid4())

    declined = await authorize(gateway, order_id=order_id, card="pm_card_chargeCustomerFail")

    assert (declined.approved, declined.reason, declined.reference) == (False, "card_declined", None)
    assert [intent["status"] for intent in intents_of_order(localstripe, order_id)] == ["requires_payment_method"]


async def test_an_order_without_a_card_token_is_refused_without_calling_stripe(
    gateway: StripeGateway, localstripe: LocalStripe
) -> None:
    order_id = str(uuid.uuid4())

    refused = await authorize(gateway, order_id=order_id, card="")

    assert (refused.approved, refused.reason) == (False, "missing_card_token")
    assert intents_of_order(localstripe, order_id) == []


async def test_the_same_idempotency_key_twice_makes_one_payment_intent_and_a_new_key_another(
    gateway: StripeGateway, localstripe: LocalStripe
) -> None:
    order_id, same = str(uuid.uuid4()), key()

    first = await authorize(gateway, order_id=order_id, idempotency_key=same)
    retried = await authorize(gateway, order_id=order_id, idempotency_key=same)
    assert [intent["id"] for intent in intents_of_order(localstripe, order_id)] == [first.reference]
    other = await authorize(gateway, order_id=order_id, idempotency_key=key())

    assert retried == first
    assert sorted(intent["id"] for intent in intents_of_order(localstripe, order_id)) == sorted(
        [first.reference, other.reference]
    )


async def test_a_key_reused_for_another_order_is_permanent_and_charges_nothing_more(
    gateway: StripeGateway, localstripe: LocalStripe
) -> None:
    reused, other_order = key(), str(uuid.uuid4())
    await authorize(gateway, idempotency_key=reused)

    with pytest.raises(PermanentError, match="idempotency key reused"):
        await authorize(gateway, order_id=other_order, idempotency_key=reused)

    assert intents_of_order(localstripe, other_order) == []


async def test_a_capture_retried_with_its_key_is_the_same_capture_not_a_refusal(gateway: StripeGateway) -> None:
    authorized = await authorize(gateway)
    capture_key = key()

    first = await gateway.capture(idempotency_key=capture_key, authorization_id=authorized.reference, amount=5000)
    retried = await gateway.capture(idempotency_key=capture_key, authorization_id=authorized.reference, amount=5000)
    with_new_key = await gateway.capture(idempotency_key=key(), authorization_id=authorized.reference, amount=5000)

    assert (first.approved, first.amount) == (True, 5000)
    assert retried == first
    assert (with_new_key.approved, with_new_key.reason) == (False, "capture_refused")


async def test_a_stopped_stripe_is_a_transient_error_for_every_call(tmp_path) -> None:
    stopped = LocalStripe(tmp_path)
    api_base = stopped.start()
    stopped.stop()
    gateway = StripeGateway(TEST_API_KEY, calls=OutsideCalls(), api_base=api_base, timeout_seconds=2, max_network_retries=1)
    try:
        calls = [
            authorize(gateway),
            gateway.capture(idempotency_key=key(), authorization_id="pi_gone", amount=AMOUNT),
            gateway.void(idempotency_key=key(), authorization_id="pi_gone"),
            gateway.refund(idempotency_key=key(), capture_id="ch_gone", amount=AMOUNT),
        ]
        for call in calls:
            with pytest.raises(TransientError, match="APIConnectionError"):
                await call
    finally:
        await gateway.aclose()


async def test_a_rejected_api_key_is_transient_and_the_key_is_not_in_the_error(localstripe: LocalStripe) -> None:
    wrong_key = "rk_wrong_secret_value_1234"
    gateway = StripeGateway(wrong_key, calls=OutsideCalls(), api_base=localstripe.api_base, max_network_retries=0)
    try:
        with pytest.raises(TransientError) as raised:
            await authorize(gateway)
    finally:
        await gateway.aclose()
    assert "AuthenticationError (401)" in str(raised.value)
    assert "1234" not in str(raised.value) and wrong_key not in repr(gateway)


# Answers localstripe never gives: a minimal HTTP fake of the test only, answering every request the same way.
@contextlib.asynccontextmanager
async def canned_stripe(status: int, error: dict) -> AsyncIterator[tuple[str, list[str]]]:
    seen: list[str] = []

    async def answer(request: Request) -> JSONResponse:
        seen.append(request.headers.get("idempotency-key", ""))
        return JSONResponse({"error": error}, status_code=status)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/{path:path}", answer, methods=["POST"])]), log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", seen
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def test_insufficient_funds_is_a_refusal_with_the_decline_code_rather_than_the_error_code() -> None:
    error = {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds", "message": "Your card has insufficient funds."}
    async with canned_stripe(402, error) as (api_base, seen):
        gateway = StripeGateway(TEST_API_KEY, calls=OutsideCalls(), api_base=api_base, max_network_retries=2)
        try:
            result = await authorize(gateway, idempotency_key="key-funds")
        finally:
            await gateway.aclose()
    assert (result.approved, result.reason) == (False, "insufficient_funds")
    assert seen == ["key-funds"]


# stripe's client retries 5xx itself (with the same key) but leaves a 429 to the caller.
@pytest.mark.parametrize(("status", "requests"), [(500, 3), (503, 3), (429, 1)])
async def test_a_stripe_server_error_or_rate_limit_is_transient_after_the_clients_retries_with_the_same_key(
    status: int, requests: int
) -> None:
    async with canned_stripe(status, {"type": "api_error", "message": "Something went wrong."}) as (api_base, seen):
        gateway = StripeGateway(TEST_API_KEY, calls=OutsideCalls(), api_base=api_base, max_network_retries=2)
        try:
            with pytest.raises(TransientError, match=f"\\({status}\\)"):
                await gateway.capture(idempotency_key="key-capture", authorization_id="pi_1", amount=AMOUNT)
        finally:
            await gateway.aclose()
    assert seen == ["key-capture"] * requests


def _registry_of(calls: OutsideCalls) -> CollectorRegistry:
    registry = CollectorRegistry()
    for collector in calls.collectors():
        registry.register(collector)
    return registry


async def test_every_stripe_call_is_an_outside_call_with_its_outcome_latency_and_reason_but_no_card_or_key(
    localstripe: LocalStripe,
) -> None:
    calls = OutsideCalls()
    registry = _registry_of(calls)
    gateway = StripeGateway(TEST_API_KEY, calls=calls, api_base=localstripe.api_base, timeout_seconds=10)
    try:
        with capture_logs() as logs:
            approved = await authorize(gateway)
            await authorize(gateway, card="pm_card_chargeCustomerFail")
            await gateway.capture(idempotency_key=key(), authorization_id=approved.reference, amount=AMOUNT)
    finally:
        await gateway.aclose()

    lines = [(e["target"], e["operation"], e["outcome"], e.get("reason")) for e in logs if e["event"] == "outside call"]
    assert lines == [
        ("stripe", "authorize", "approved", None),
        ("stripe", "authorize", "refused", "card_declined"),
        ("stripe", "capture", "approved", None),
    ]
    assert all(e["duration_ms"] >= 0 for e in logs)
    assert TEST_API_KEY not in str(logs) and "pm_card" not in str(logs)
    count = lambda operation, outcome: registry.get_sample_value(  # noqa: E731
        "ordermesh_outside_call_seconds_count", {"target": "stripe", "operation": operation, "outcome": outcome}
    )
    assert (count("authorize", "approved"), count("authorize", "refused"), count("capture", "approved")) == (1, 1, 1)


async def test_a_stripe_outage_is_counted_as_an_outside_call_error_with_stripes_error_class() -> None:
    calls = OutsideCalls()
    registry = _registry_of(calls)
    async with canned_stripe(503, {"type": "api_error", "message": "Something went wrong."}) as (api_base, _seen):
        gateway = StripeGateway(TEST_API_KEY, calls=calls, api_base=api_base, max_network_retries=0)
        try:
            with capture_logs() as logs, pytest.raises(TransientError):
                await gateway.void(idempotency_key=key(), authorization_id="pi_1")
        finally:
            await gateway.aclose()
    [failed] = [e for e in logs if e["event"] == "outside call failed"]
    assert (failed["target"], failed["operation"], failed["stripe_error"], failed["status"]) == ("stripe", "void", "APIError", 503)
    labels = {"target": "stripe", "operation": "void", "error": "TransientError"}
    assert registry.get_sample_value("ordermesh_outside_call_errors_total", labels) == 1
