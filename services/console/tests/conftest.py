"""Fixtures of the console's browser tests: Debian's chromium (installed with apt when missing) driven by Playwright,
a logged-in page, and screenshots under `.artifacts/console/` at the repository root."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from ordermesh_contracts import Payment, PaymentMethod, order_id_for, topics
from ordermesh_devstack.demo import DEMO_SHOP, demo_order
from ordermesh_devstack.browser import ensure_chromium
from support import eventually, fetch, publish_raw

ARTIFACTS = Path(__file__).resolve().parents[3] / ".artifacts" / "console"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[object]:
    """Headless Debian chromium under Playwright, once per test session."""
    from playwright.async_api import async_playwright

    try:
        executable = ensure_chromium()
    except RuntimeError as missing:
        pytest.fail(str(missing))
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def new_page(browser):
    """Makes pages in fresh browser contexts (own cookies); closes them after the test."""
    contexts = []

    async def make():
        context = await browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1400, "height": 900})
        context.set_default_timeout(60_000)
        contexts.append(context)
        return await context.new_page()

    yield make
    for context in contexts:
        await context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the main pages' screenshots are written (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


class ConsoleDriver:
    """What the console's browser tests do again and again: submit an order that waits for staff, log in, read rows."""

    def __init__(self, stack, new_page) -> None:
        self.stack = stack
        self.new_page = new_page

    async def submit(self, number: int, *, shop_id: str | None = None, method: str = "bank_transfer",
                     customer_name: str = "山田 太郎", **changes):
        """Publishes a demo order (bank transfer by default: it waits for payment), with `changes` to its fields;
        returns it and its order id."""
        order = demo_order(number, shop_id=shop_id or DEMO_SHOP)
        order = order.model_copy(update={
            "payment": Payment(method=PaymentMethod(method)) if method != "card" else order.payment,
            "customer": order.customer.model_copy(update={"name": customer_name}),
            **changes,
        })
        await publish_raw(self.stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
        return order, order_id_for(order.shop_id, order.channel.value, order.external_order_no)

    async def row(self, order_id, columns: str = "stage") -> dict | None:
        """The orders service's row of an order (the columns asked for)."""
        rows = await fetch(self.stack.service_dsns["orders"], f"SELECT {columns} FROM orders WHERE order_id = $1", order_id)
        return dict(rows[0]) if rows else None

    async def stage(self, order_id) -> str | None:
        """The order's stage in the orders service."""
        return (await self.row(order_id) or {}).get("stage")

    async def wait_stage(self, order_id, stage: str, timeout: float = 120) -> None:
        """Waits (bounded) until the order reaches that stage."""
        async def reached() -> bool:
            return await self.stage(order_id) == stage

        await eventually(reached, timeout=timeout, interval=0.5)

    async def history(self, order_id) -> list[dict]:
        """The order's history rows: who did what."""
        rows = await fetch(
            self.stack.service_dsns["orders"], "SELECT actor, what FROM order_history WHERE order_id = $1 ORDER BY id", order_id
        )
        return [dict(row) for row in rows]

    async def logged_in(self, username: str = "admin", password: str | None = None):
        """A new page (own cookies) logged in as that staff member, on the order list."""
        page = await self.new_page()
        await page.goto(f"{self.stack.console_url}/orders")
        await page.fill("input[name=username]", username)
        await page.fill("input[name=password]", password or self.stack.console_admin_password)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/orders")
        return page

    async def staff_get(self, service: str, path: str, **params):
        """A service's staff read API answer (JSON), as the services see the order."""
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.get(
                f"http://127.0.0.1:{self.stack.processes[service].http_port}{path}", params=params,
                headers={"Authorization": f"Bearer {self.stack.api_token}"},
            )
        answer.raise_for_status()
        return answer.json()


@pytest.fixture
def console(stack, new_page) -> ConsoleDriver:
    """The console's test driver on the session's stack."""
    return ConsoleDriver(stack, new_page)
