"""Routes of the web pages (`/` annotate, `/queue`, `/arena`, `/dashboard`, `/login`) and their static files.

A page needs a signed-in user whose role may use it: without one the browser is sent to `/login?next=...`;
with the wrong role it gets a 403 page. `/login?token=...` signs in once with a login link
(`llmfl users login-link NAME`, or the link the first start prints).

The pages themselves are static files. Each includes `static/api.js` first: it asks `GET /v1/auth/me` who is
signed in, builds the header bar from that user's permissions, shows the controls marked `data-needs=...`
that the role may use, and sends the CSRF header on every write. Nothing inline (script, style, handler):
the pages run under the Content-Security-Policy of `api/guards/headers.py`.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from llm_feedback_loop.api.deps import SessionDep, StateDep
from llm_feedback_loop.api.routes.accounts import set_session_cookies
from llm_feedback_loop.api.security import authenticator_of
from llm_feedback_loop.auth import accounts
from llm_feedback_loop.auth.roles import Permission, roles_with

STATIC = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (never `//host` or `https://...`)."""
    if not value or not value.startswith("/") or value.startswith("//") or len(value) > 500:
        return "/"
    if any(char <= " " or char in "\\\x7f" for char in value):  # browsers drop tabs: "/\t/x" is //x
        return "/"
    return value


# The page a signed-in user gets for a page their role may not use: the header bar (filled in by api.js) and
# where to go instead. No inline script or style: the pages run under a strict Content-Security-Policy.
FORBIDDEN = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Not for your role · llm-feedback-loop</title>
  <link rel="stylesheet" href="/static/app.css">
</head>
<body>
  <header class="bar">
    <strong class="brand">llm-feedback-loop</strong>
    <nav aria-label="Pages"></nav>
    <div class="who"></div>
  </header>
  <main class="narrow forbidden">
    <section class="panel">
      <h1>Not for your role</h1>
      <p>You are signed in as <b id="forbidden-name">{name}</b> ({role}); the {page} page is for: {roles}.</p>
      <p><a class="button" href="{home}">Go to {home_label}</a></p>
      <p class="hint">Need it? Ask an admin for a different role, or sign out and sign in as someone else.</p>
    </section>
  </main>
  <script src="/static/api.js"></script>
</body>
</html>
"""


async def page(request: Request, file: str, permission: Permission) -> Response:
    """The page in `file` for a user whose role holds `permission`; otherwise the sign-in redirect or a 403."""
    principal = await authenticator_of(request).principal(request)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
    if not principal.may(permission):
        home, home_label = ("/dashboard", "the dashboard") if principal.may(Permission.read) else ("/", "annotating")
        content = FORBIDDEN.format(
            name=escape(principal.name or ""),
            role=escape(principal.role),
            page=escape(request.url.path.strip("/") or "annotate"),
            roles=", ".join(roles_with(permission)),
            home=home,
            home_label=home_label,
        )
        return HTMLResponse(status_code=403, content=content)
    return FileResponse(STATIC / file, media_type="text/html")


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


@router.get("/")
async def annotate_page(request: Request) -> Response:
    return await page(request, "annotate.html", Permission.annotate)


@router.get("/queue")
async def queue_page(request: Request) -> Response:
    return await page(request, "annotate.html", Permission.annotate)  # the annotate page, in queue mode


@router.get("/dashboard")
async def dashboard_page(request: Request) -> Response:
    return await page(request, "dashboard.html", Permission.read)


@router.get("/arena")
async def arena_page(request: Request) -> Response:
    return await page(request, "arena.html", Permission.annotate)


@router.get("/login")
async def login_page(
    request: Request,
    session: SessionDep,
    state: StateDep,
    token: Annotated[str | None, Query(max_length=200)] = None,
    next: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The sign-in form; with `token`, a one-time login link: signs in and goes on to `next`."""
    if token is None:
        return FileResponse(STATIC / "login.html", media_type="text/html")
    user = await accounts.use_login_link(session, token)
    if user is None:
        await session.rollback()
        return RedirectResponse("/login?expired=1", status_code=303)
    session_token, csrf = await accounts.create_web_session(session, user, state.settings.session_hours)
    await session.commit()
    target = safe_next(next)
    if target == "/" and user.role == "viewer":
        target = "/dashboard"
    response = RedirectResponse(target, status_code=303)
    set_session_cookies(request, response, session_token, csrf, state.settings.session_hours)
    return response


def install_pages(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
