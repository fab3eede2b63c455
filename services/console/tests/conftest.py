"""Fixtures of the console's browser tests: Debian's chromium (installed with apt when missing) driven by Playwright,
a logged-in page, and screenshots under `.artifacts/console/` at the repository root."""

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[3] / ".artifacts" / "console"


def _has_japanese_font() -> bool:
    listed = subprocess.run(["fc-list", ":lang=ja"], capture_output=True, text=True, check=False) if shutil.which("fc-list") else None
    return bool(listed and listed.stdout.strip())


def _ensure_chromium() -> str:
    """The chromium binary and a Japanese font (screenshots are read by people), installed from Debian with apt-get
    when absent (CI runs as root)."""
    missing = [p for p, present in (("chromium", shutil.which("chromium")), ("fonts-ipafont-gothic", _has_japanese_font())) if not present]
    if missing:
        if os.geteuid() != 0:
            pytest.fail(f"missing {missing}: install with `apt-get install -y {' '.join(missing)}` (needs root)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    return shutil.which("chromium") or pytest.fail("apt-get installed chromium but it is not on PATH")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[object]:
    """Headless Debian chromium under Playwright, once per test session."""
    from playwright.async_api import async_playwright

    executable = _ensure_chromium()
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
