"""Browser tests: Debian's Chromium driven by Playwright (never `playwright install`), against a live
`llmfl serve` on the tiny model. Outside CI a machine without Chromium skips them; in CI they fail.

Every service has the users root (admin), annie (annotator) and vera (viewer), with the passwords in
`PASSWORDS` and an API key each (`web_keys`); pages sign in through the login form (`sign_in`). Every page
runs under the Content-Security-Policy below (the service's own when it sends one), and a page's teardown
fails the test on any violation of it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit

import httpx
import pytest

from llm_feedback_loop.auth import accounts
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.engine import create_engine, create_session_factory
from tests.support.accounts import TEST_USERS, issue_keys
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
PASSWORDS = {name: f"{name}-password-2026" for name in TEST_USERS.values()}
# The policy the service's pages must run under (no inline script or style, nothing from elsewhere).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
T = TypeVar("T")
PAGE_PATHS = {"/", "/queue", "/arena", "/dashboard", "/login"}
# Reports a violation to the console, where the page fixture collects it with the browser's own messages.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"} at ${where}`);
});
"""


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


def off_the_loop(function: Callable[[], T]) -> T:
    """Run `function` (which calls asyncio.run) on another thread: Playwright's loop runs on this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function).result()


async def _set_passwords(database_url: str, passwords: dict[str, str]) -> None:
    engine = create_engine(Settings(database_url=database_url, _env_file=None).database_url)  # type: ignore[call-arg]
    try:
        async with create_session_factory(engine)() as session:
            for name, password in passwords.items():
                await accounts.set_password(session, await accounts.get_user(session, name), password)
            await session.commit()
    finally:
        await engine.dispose()


def web_database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/web.db"


@pytest.fixture
def web_keys(tmp_path: Path) -> dict[str, str]:
    """{role: API key} of root, annie and vera, made (with their PASSWORDS) before the service starts."""
    url = web_database_url(tmp_path)
    keys = off_the_loop(lambda: issue_keys(url))
    off_the_loop(lambda: asyncio.run(_set_passwords(url, PASSWORDS)))
    return keys


@pytest.fixture
def live_service(tmp_path: Path, tiny_model: Path, web_keys: dict[str, str]) -> Iterator[str]:
    """`llmfl serve` as a real process: SQLite in tmp_path, the tiny model as the base model."""
    environment = {"DATABASE_URL": web_database_url(tmp_path), "BASE_MODEL": str(tiny_model)}
    with running_llmfl(["serve"], tmp_path, environment) as base:
        yield base


@pytest.fixture
def admin_api(live_service: str, web_keys: dict[str, str]) -> Iterator[httpx.Client]:
    """An HTTP client of the live service with root's (admin) key."""
    with httpx.Client(base_url=live_service, headers={"Authorization": f"Bearer {web_keys['admin']}"}) as client:
        yield client


class CspWatch:
    """Every Content-Security-Policy violation the pages of one browser context report."""

    def __init__(self) -> None:
        self.violations: list[str] = []

    def on_console(self, message) -> None:
        if "Content Security Policy" in message.text or "CSP violation" in message.text:
            self.violations.append(message.text)


@pytest.fixture
def new_page(browser, live_service: str) -> Iterator[Callable[..., object]]:
    """Opens pages, each in a browser context of its own (its own cookies, so its own sign-in), under the
    CSP; at teardown, asserts that none of them met a violation."""
    served = httpx.get(f"{live_service}/login").headers.get("content-security-policy")
    assert served in (None, CSP), f"the service's pages run under another policy than the one tested: {served}"
    contexts, watches = [], []

    def add_policy(route) -> None:
        response = route.fetch(max_redirects=0)
        headers = dict(response.headers)
        headers.setdefault("content-security-policy", CSP)
        route.fulfill(response=response, headers=headers)

    def open_page(viewport: dict[str, int] = DESKTOP):
        context = browser.new_context(viewport=viewport, base_url=live_service)
        watch = CspWatch()
        context.add_init_script(REPORT_VIOLATIONS)
        if served is None:  # until the service sends the policy itself, the pages get it here
            context.route(lambda url: urlsplit(url).path in PAGE_PATHS, add_policy)
        context.on("console", watch.on_console)
        contexts.append(context)
        watches.append(watch)
        return context.new_page()

    open_page.watches = watches  # type: ignore[attr-defined]  # the harness's own test reads them
    yield open_page
    for context in contexts:
        context.close()
    violations = [text for watch in watches for text in watch.violations]
    assert not violations, f"Content-Security-Policy violations: {violations}"


def sign_in(page, name: str, next_path: str = "/", password: str | None = None):
    """Sign in with the login form as NAME (by default one of TEST_USERS, with its password in PASSWORDS) and
    wait for the page it goes on to."""
    page.goto(f"/login?next={quote(next_path)}")
    page.fill("#login-name", name)
    page.fill("#login-password", password or PASSWORDS[name])
    with page.expect_navigation(url=lambda url: urlsplit(url).path != "/login"):
        page.click("#login-submit")
    page.wait_for_selector("#who-name")
    return page


@pytest.fixture
def page(new_page) -> object:
    """A page signed in as annie, the annotator."""
    return sign_in(new_page(), TEST_USERS["annotator"])


@pytest.fixture
def admin_page(new_page) -> object:
    """A page signed in as root, the admin."""
    return sign_in(new_page(), TEST_USERS["admin"])


def screenshot(page, name: str) -> Path:
    """Write the page as it looks at desktop and phone widths: NAME-desktop.png, NAME-phone.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    return SCREENSHOTS
