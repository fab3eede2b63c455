"""Fixtures of the console's browser tests: Debian's chromium (installed with apt when missing) driven by Playwright,
a logged-in page, and screenshots under `.artifacts/console/` at the repository root."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ordermesh_devstack.browser import ensure_chromium

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
