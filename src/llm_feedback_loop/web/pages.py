"""Routes of the web pages (`/` annotate, `/queue`, `/arena`, `/dashboard`, `/login`) and their static files.

A page needs a signed-in user whose role may use it: without one the browser is sent to `/login?next=...`;
with the wrong role it gets a 403 page. `/login?token=...` signs in once with a login link
(`llmfl users login-link NAME`, or the link the first start prints).
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
from llm_feedback_loop.auth.roles import Permission

STATIC = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (never `//host` or `https://...`)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 500:
        return "/"
    return value


async def page(request: Request, file: str, permission: Permission) -> Response:
    principal = await authenticator_of(request).principal(request)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
    if not principal.may(permission):
        home = "/dashboard" if principal.may(Permission.read) else "/"
        return HTMLResponse(
            status_code=403,
            content=(
                "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Not for your role</title>"
                "<link rel='stylesheet' href='/static/app.css'></head><body><main class='narrow'>"
                f"<h1>Not for your role</h1><p>You are signed in as <b>{escape(principal.name or '')}</b> "
                f"({escape(principal.role)}); this page is not for that role.</p>"
                f"<p><a href='{home}'>Go to your page</a> · <a href='/login'>Sign in as someone else</a></p>"
                "</main></body></html>"
            ),
        )
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
