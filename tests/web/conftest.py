"""Browser tests: Debian's Chromium driven by Playwright (never `playwright install`), against a live
`llmfl serve` on the tiny model. Outside CI a machine without Chromium skips them; in CI they fail."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import running_llmfl

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(os.environ.get("LLMFL_SCREENSHOTS", Path(__file__).parents[2] / "test-screenshots"))


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="module")  # not session: Playwright's sync API keeps an event loop running meanwhile,
def browser() -> Iterator[object]:  # and every asyncio.run() in a later test module would fail
    executable = chromium_path()
    if executable is None:
        message = "Chromium is not installed (apt-get install --no-install-recommends chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the browser tests")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def live_service(tmp_path: Path, tiny_model: Path) -> Iterator[str]:
    """`llmfl serve` as a real process: SQLite in tmp_path, the tiny model as the base model."""
    environment = {"DATABASE_URL": f"sqlite:///{tmp_path}/web.db", "BASE_MODEL": str(tiny_model)}
    with running_llmfl(["serve"], tmp_path, environment) as base:
        yield base


@pytest.fixture
def page(browser, live_service: str) -> Iterator[object]:
    context = browser.new_context(viewport=DESKTOP, base_url=live_service)
    opened = context.new_page()
    yield opened
    context.close()


def screenshot(page, name: str) -> Path:
    """Write the page as it looks at desktop and phone widths: NAME-desktop.png, NAME-phone.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    return SCREENSHOTS
