"""Accounts in a real browser: sign in with the form (a wrong password is refused), a one-time login link
signs in once, the header bar shows who is signed in and only the pages their role may use, sign-out ends
the session; an annotator sees no export or admin controls and gets the 403 page on /dashboard; an admin
creates a user and an API key on the dashboard, and the key works against the API until it is revoked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from llm_feedback_loop.auth import accounts
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.engine import create_engine, create_session_factory
from tests.support.accounts import bearer
from tests.web.conftest import PASSWORDS, off_the_loop, screenshot, sign_in, web_database_url


def path_of(page) -> str:
    return urlsplit(page.url).path


def nav_links(page) -> list[str]:
    return page.locator("header.bar nav a").all_text_contents()


def login_link(tmp_path: Path, name: str) -> str:
    async def create() -> str:
        url = web_database_url(tmp_path)
        engine = create_engine(Settings(database_url=url, _env_file=None).database_url)  # type: ignore[call-arg]
        try:
            async with create_session_factory(engine)() as session:
                token = await accounts.create_login_link(session, await accounts.get_user(session, name))
                await session.commit()
                return token
        finally:
            await engine.dispose()

    return off_the_loop(lambda: asyncio.run(create()))


def test_sign_in_with_the_form_and_sign_out(new_page, live_service: str) -> None:
    page = new_page()
    page.goto("/queue")
    assert path_of(page) == "/login" and "next=/queue" in page.url  # anonymous: sent to sign in first
    page.fill("#login-name", "annie")
    page.fill("#login-password", "not-her-password")
    page.click("#login-submit")
    page.wait_for_selector("#login-error:has-text('Wrong name or password')")
    assert path_of(page) == "/login"
    screenshot(page, "login-wrong-password")

    page.fill("#login-password", PASSWORDS["annie"])
    with page.expect_navigation(url=lambda url: urlsplit(url).path == "/queue"):
        page.click("#login-submit")  # on to where she was going
    page.wait_for_selector("body[data-loaded=true]")
    assert page.text_content("#who-name") == "annie" and page.text_content("#who-role") == "annotator"
    assert nav_links(page) == ["Annotate", "Queue", "Arena"]  # no dashboard, no API docs
    assert page.get_attribute('nav a[href="/queue"]', "aria-current") == "page"

    page.click("#sign-out")
    page.wait_for_url(lambda url: urlsplit(url).path == "/login")
    page.goto("/")
    assert path_of(page) == "/login"  # the session is over
    assert page.context.request.get(f"{live_service}/v1/auth/me").status == 401


def test_a_login_link_signs_in_once(new_page, live_service: str, tmp_path: Path) -> None:
    token = login_link(tmp_path, "vera")
    page = new_page()
    page.goto(f"/login?token={token}&next=/dashboard")
    assert path_of(page) == "/dashboard"
    page.wait_for_selector("body[data-loaded=true]")
    assert page.text_content("#who-name") == "vera"

    again = new_page()
    again.goto(f"/login?token={token}")
    assert path_of(again) == "/login" and again.is_visible("#expired")
    assert "used or has expired" in again.text_content("#expired")
    screenshot(again, "login-link-expired")


def test_an_annotator_sees_no_export_or_admin_controls(page, live_service: str) -> None:
    page.goto("/queue")
    page.wait_for_selector("body[data-loaded=true]")
    assert page.locator("#task-import").is_hidden()  # loading tasks is for admins
    assert page.locator("a[href^='/v1/export'], a[href='/docs'], a[href='/dashboard']").count() == 0

    response = page.goto("/dashboard")
    assert response.status == 403
    assert "Not for your role" in page.text_content("h1")
    assert "annie" in page.text_content("main") and "annotator" in page.text_content("main")
    page.wait_for_selector("#who-name")  # the header bar is there too
    assert nav_links(page) == ["Annotate", "Queue", "Arena"]
    screenshot(page, "forbidden")

    # The pages' helper sends the CSRF header; a write from the session without it is refused.
    refused = page.evaluate(
        """fetch('/v1/annotations', {method: 'POST', headers: {'Content-Type': 'application/json'},
             body: JSON.stringify({prompt: 'q', answers: [{text: 'a', rating: 'up'}]})})
           .then(async r => [r.status, (await r.json()).message])"""
    )
    assert refused[0] == 403 and "X-CSRF-Token" in refused[1]
    assert page.evaluate("api.get('/v1/export/sft/manifest').catch(e => e.message)").startswith("the annotator role")


def test_a_viewer_sees_the_dashboard_without_exports(new_page) -> None:
    page = sign_in(new_page(), "vera")
    assert path_of(page) == "/dashboard"  # a viewer's home
    page.wait_for_selector("body[data-loaded=true]")
    assert nav_links(page) == ["Dashboard"]
    for hidden in ("#exports-panel", "#users-panel", "#keys-panel"):
        assert page.locator(hidden).is_hidden()
    assert page.locator("#over-time").is_visible() and page.locator("#runs").is_visible()
    assert page.goto("/").status == 403  # annotating is not for viewers


def test_an_admin_creates_a_user_and_a_key_that_works(admin_page, new_page, live_service: str) -> None:
    page = admin_page
    page.goto("/dashboard")
    page.wait_for_selector("body[data-loaded=true]")
    assert nav_links(page) == ["Annotate", "Queue", "Arena", "Dashboard", "API"]
    assert page.locator("#exports-panel").is_visible()
    users = page.locator("#users tbody tr").evaluate_all("rows => rows.map(r => r.dataset.user)")
    assert users == ["root", "annie", "vera"]

    page.fill("#user-name", "zoe")
    page.select_option("#user-role", "viewer")
    page.fill("#user-password", "zoe-password-2026")
    page.click("#user-create")
    page.wait_for_selector('#users tr[data-user="zoe"]')
    assert "Created zoe (viewer)" in page.text_content("#users-status")
    zoe = sign_in(new_page(), "zoe", "/dashboard", "zoe-password-2026")  # the new user signs in with that password
    assert zoe.text_content("#who-role") == "viewer"

    vera = page.locator('#users tr[data-user="vera"]')
    vera.locator("button.set-password").click()  # shows the field
    vera.locator("input.new-password").fill("vera-new-password")
    vera.locator("button.set-password").click()
    page.wait_for_selector("#users-status:has-text('vera: password set')")
    assert sign_in(new_page(), "vera", "/dashboard", "vera-new-password").text_content("#who-name") == "vera"

    page.select_option("#key-user", "root")
    page.fill("#key-name", "labelling script")
    page.click("#key-create")
    page.wait_for_selector("#new-key:not([hidden])")
    key = page.input_value("#new-key-value")
    assert key.startswith("llmfl_") and "shown only this once" in page.text_content("#new-key")
    page.click("#new-key-copy")
    page.wait_for_selector("#keys-status:has-text('Copied')")
    screenshot(page, "dashboard-admin")

    with httpx.Client(base_url=live_service) as api:
        me = api.get("/v1/auth/me", headers=bearer(key))
        assert me.status_code == 200 and me.json()["name"] == "root" and me.json()["role"] == "admin"
        prefix = next(row["prefix"] for row in api.get("/v1/keys", headers=bearer(key)).json() if row["name"])
        row = page.locator(f'#keys tr[data-prefix="{prefix}"]')
        assert "labelling script" in row.text_content() and "active" in row.text_content()

        row.locator("button.revoke").click()  # asks again first
        assert row.locator("button.revoke").text_content() == "Really revoke?"
        assert api.get("/v1/auth/me", headers=bearer(key)).status_code == 200
        row.locator("button.revoke").click()
        page.wait_for_selector(f'#keys tr[data-prefix="{prefix}"]:has-text("revoked")')
        assert api.get("/v1/auth/me", headers=bearer(key)).status_code == 401
    page.click("#new-key-done")
    assert page.locator("#new-key").is_hidden() and page.input_value("#new-key-value") == ""


def test_the_csp_check_catches_an_inline_style(new_page) -> None:
    """The harness itself: an inline style attribute built by script is reported, so its silence means something."""
    page = sign_in(new_page(), "annie")
    page.evaluate("""document.body.insertAdjacentHTML('beforeend', '<div style="color: red">x</div>')""")
    page.wait_for_timeout(200)
    (watch,) = new_page.watches
    assert any("style-src" in text for text in watch.violations), watch.violations
    watch.violations.clear()
