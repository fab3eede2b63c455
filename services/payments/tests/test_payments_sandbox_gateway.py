"""The sandbox gateway adapter against the real sandbox over HTTP: declines, errors, and timeouts that must not charge twice."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs
from ordermesh_devstack.sandboxes import payment_gateway
from ordermesh_payments.adapters.gateway import SandboxGateway
from ordermesh_servicekit.json_http import JsonHttp
from ordermesh_servicekit.consuming import TransientError
from ordermesh_servicekit.outside import OutsideCalls


sandbox = payment_gateway.served


@contextlib.asynccontextmanager
async def gateway_http(url: str, timeout_seconds: float = 10, calls: OutsideCalls | None = None) -> AsyncIterator[JsonHttp]:
    http = JsonHttp(url, calls=calls or OutsideCalls(), target="gateway", timeout_seconds=timeout_seconds)
    try:
        yield http
    finally:
        await http.aclose()


async def authorize(gateway: SandboxGateway, token: str, key: str = "key-1"):
    return await gateway.authorize(idempotency_key=key, order_id="ord-1", amount=9660, currency="JPY", card_token=token)


@pytest.mark.parametrize(("token", "reason"), [("tok_decline", "card_declined"), ("tok_insufficient_funds", "insufficient_funds")])
async def test_a_declined_card_is_a_refusal_with_the_gateways_reason(token: str, reason: str) -> None:
    async with sandbox() as (url, _state), gateway_http(url) as http:
        result = await authorize(SandboxGateway(http), token)
    assert (result.approved, result.reason) == (False, reason)


async def test_a_gateway_that_answers_500_three_times_is_a_refusal_with_reason_gateway_error() -> None:
    async with sandbox() as (url, state), gateway_http(url) as http:
        result = await authorize(SandboxGateway(http), "tok_error")
        assert state._authorizations == {}
    assert (result.approved, result.reason) == (False, "gateway_error")


async def test_a_timed_out_authorization_retried_with_the_same_key_charges_the_card_once() -> None:
    async with (
        sandbox(timeout_delay_s=1.0) as (url, _state), gateway_http(url, timeout_seconds=0.3) as http,
        httpx.AsyncClient(base_url=url) as client,
    ):
        gateway = SandboxGateway(http)
        attempts = 0
        while True:
            attempts += 1
            try:
                result = await authorize(gateway, "tok_timeout", key="key-timeout")
                break
            except TransientError:
                await asyncio.sleep(0.2)
        listed = (await client.get("/v1/authorizations", params={"order_id": "ord-1"})).json()["authorizations"]
    assert attempts >= 2
    assert result.approved
    assert [a["authorization_id"] for a in listed] == [result.reference]


async def test_an_unreachable_gateway_is_a_transient_error_to_retry() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    async with gateway_http(f"http://127.0.0.1:{port}") as http:
        with pytest.raises(TransientError):
            await authorize(SandboxGateway(http), "tok_visa")


async def test_every_gateway_call_is_an_outside_call_named_by_its_operation_with_the_status_class() -> None:
    calls = OutsideCalls()
    registry = CollectorRegistry()
    for collector in calls.collectors():
        registry.register(collector)
    async with sandbox() as (url, _state), gateway_http(url, calls=calls) as http:
        gateway = SandboxGateway(http)
        with capture_logs() as logs:
            approved = await authorize(gateway, "tok_visa")
            await gateway.capture(idempotency_key="key-2", authorization_id=approved.reference, amount=9660)
            await authorize(gateway, "tok_error", key="key-3")

    lines = [(e["target"], e["operation"], e["outcome"], e["status"]) for e in logs if e["event"] == "outside call"]
    assert lines == [
        ("gateway", "POST /v1/authorizations", "2xx", 200),
        ("gateway", "POST /v1/authorizations/:id/capture", "2xx", 200),
        *[("gateway", "POST /v1/authorizations", "5xx", 500)] * 3,
    ]
    count = lambda operation, outcome: registry.get_sample_value(  # noqa: E731
        "ordermesh_outside_call_seconds_count", {"target": "gateway", "operation": operation, "outcome": outcome}
    )
    assert (count("POST /v1/authorizations", "2xx"), count("POST /v1/authorizations", "5xx")) == (1, 3)


async def test_an_unreachable_gateway_is_counted_as_an_outside_call_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    calls = OutsideCalls()
    registry = CollectorRegistry()
    for collector in calls.collectors():
        registry.register(collector)
    async with gateway_http(f"http://127.0.0.1:{port}", calls=calls) as http:
        with capture_logs() as logs, pytest.raises(TransientError):
            await authorize(SandboxGateway(http), "tok_visa")
    [failed] = [e for e in logs if e["event"] == "outside call failed"]
    assert (failed["target"], failed["operation"]) == ("gateway", "POST /v1/authorizations")
    errors = [s for m in registry.collect() for s in m.samples if s.name == "ordermesh_outside_call_errors_total"]
    assert [(s.labels["operation"], s.value) for s in errors] == [("POST /v1/authorizations", 1)]
