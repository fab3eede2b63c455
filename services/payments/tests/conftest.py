"""Fixtures of the payments store tests: a migrated payments database and the sandbox gateway served in-process."""

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from ordermesh_devstack.sandboxes import payment_gateway
from ordermesh_servicekit.json_http import JsonHttp
from ordermesh_servicekit.outside import OutsideCalls
from support import migrated_pool


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    """The payments database, migrated."""
    async with migrated_pool(fresh_database, "payments", max_size=6) as created:
        yield created


@pytest.fixture
async def sandbox_served() -> AsyncIterator[tuple[httpx.AsyncClient, payment_gateway.PaymentGateway]]:
    """A client of the sandbox gateway, and the sandbox's own record of what it was asked."""
    async with payment_gateway.served() as (url, state), httpx.AsyncClient(base_url=url) as client:
        yield client, state


@pytest.fixture
def sandbox(sandbox_served) -> httpx.AsyncClient:
    """A client of the sandbox gateway."""
    return sandbox_served[0]


@pytest.fixture
async def sandbox_http(sandbox_served) -> AsyncIterator[JsonHttp]:
    """The service's own HTTP client of the sandbox gateway, as the adapters are wired with it."""
    http = JsonHttp(str(sandbox_served[0].base_url), calls=OutsideCalls(), target="gateway", timeout_seconds=10)
    yield http
    await http.aclose()
