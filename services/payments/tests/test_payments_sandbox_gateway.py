"""The sandbox gateway adapter against the real sandbox over HTTP: declines, errors, and timeouts that must not charge twice."""

import asyncio
import socket

import httpx
import pytest
from ordermesh_devstack.sandboxes import payment_gateway
from ordermesh_payments.adapters.gateway import SandboxGateway
from ordermesh_servicekit.consuming import TransientError


sandbox = payment_gateway.served


async def authorize(gateway: SandboxGateway, token: str, key: str = "key-1"):
    return await gateway.authorize(idempotency_key=key, order_id="ord-1", amount=9660, currency="JPY", card_token=token)


@pytest.mark.parametrize(("token", "reason"), [("tok_decline", "card_declined"), ("tok_insufficient_funds", "insufficient_funds")])
async def test_a_declined_card_is_a_refusal_with_the_gateways_reason(token: str, reason: str) -> None:
    async with sandbox() as (url, _state), httpx.AsyncClient(base_url=url) as client:
        result = await authorize(SandboxGateway(client), token)
    assert (result.approved, result.reason) == (False, reason)


async def test_a_gateway_that_answers_500_three_times_is_a_refusal_with_reason_gateway_error() -> None:
    async with sandbox() as (url, state), httpx.AsyncClient(base_url=url) as client:
        result = await authorize(SandboxGateway(client), "tok_error")
        assert state._authorizations == {}
    assert (result.approved, result.reason) == (False, "gateway_error")


async def test_a_timed_out_authorization_retried_with_the_same_key_charges_the_card_once() -> None:
    async with sandbox(timeout_delay_s=1.0) as (url, _state), httpx.AsyncClient(base_url=url, timeout=0.3) as client:
        gateway = SandboxGateway(client)
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
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        with pytest.raises((TransientError, httpx.TransportError)):
            await authorize(SandboxGateway(client), "tok_visa")
