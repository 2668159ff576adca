"""Who is calling, and may they: the authentication both servers share, and `require(...)`, the one
dependency through which every endpoint states which permission (so which roles) it needs.

A caller is known by `Authorization: Bearer llmfl_...` (an API key: scripts, the `openai` SDK, the loop) or by
the HttpOnly session cookie of a web login. A request from a web session that changes anything must repeat
the session's CSRF token in the `X-CSRF-Token` header (the pages read it from the `llmfl_csrf` cookie).

Key lookups are cached for `CACHE_S` seconds (the ingest path checks a key on every request): a key revoked
through this service stops working at once, one revoked from another process within `CACHE_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_feedback_loop.auth.accounts import OPEN_ACCESS, Principal, authenticate_key, session_principal, touch_key
from llm_feedback_loop.auth.credentials import sha256_hex
from llm_feedback_loop.auth.roles import Permission, roles_with

SESSION_COOKIE = "llmfl_session"
CSRF_COOKIE = "llmfl_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CACHE_S = 10.0
TOUCH_EVERY_S = 300.0  # last_used_at is written at most this often per key
CACHE_ENTRIES = 10_000


class LoginThrottle:
    """Password sign-ins: after `failures` failed ones from an address within `window_s`, more from it are
    refused (429) until the window has passed. After `failures` failed ones for a name (from any addresses),
    more for it are refused from the addresses that failed for it themselves: guesses spread over many
    addresses get one each, and the account's owner, signing in from an address that has not failed for it, is
    not locked out by them. At most `hashing` password checks run at once (Argon2 costs ~100 ms of CPU and 64
    MiB each), with at most `waiting` more queued: a flood gets 429, not the CPU."""

    def __init__(self, failures: int = 10, window_s: float = 300.0, hashing: int = 2, waiting: int = 32) -> None:
        self.failures, self.window_s, self.waiting = failures, window_s, waiting
        self._failed: dict[str, list[float]] = {}
        self._hashing = asyncio.Semaphore(hashing)
        self._queued = 0

    def _recent(self, key: str, now: float) -> list[float]:
        recent = [t for t in self._failed.get(key, ()) if now - t < self.window_s]
        if recent:
            self._failed[key] = recent
        else:
            self._failed.pop(key, None)
        return recent

    def retry_after(self, name: str, address: str) -> float:
        """Seconds until a sign-in as `name` from `address` may be tried; 0 when it may now."""
        now = time.monotonic()
        wait = 0.0
        keys = [f"address:{address}"]
        if self._recent(f"pair:{name}\x00{address}", now):  # this address has failed for this name
            keys.append(f"name:{name}")
        for key in keys:
            recent = self._recent(key, now)
            if len(recent) >= self.failures:
                wait = max(wait, self.window_s - (now - recent[0]))
        return wait

    def failed(self, name: str, address: str) -> None:
        if len(self._failed) >= CACHE_ENTRIES:
            self._failed.clear()
        for key in (f"name:{name}", f"address:{address}", f"pair:{name}\x00{address}"):
            self._failed.setdefault(key, []).append(time.monotonic())

    def succeeded(self, name: str, address: str) -> None:
        """The address's own failures for the name are forgiven; the name's count stays (for the addresses
        that guessed at it) until its window passes."""
        self._failed.pop(f"pair:{name}\x00{address}", None)

    @contextlib.asynccontextmanager
    async def checking(self) -> AsyncIterator[None]:
        if self._queued >= self.waiting:
            raise HTTPException(
                status_code=429, detail="too many sign-ins at once; try again", headers={"Retry-After": "1"}
            )
        self._queued += 1
        try:
            async with self._hashing:
                yield
        finally:
            self._queued -= 1


class Authenticator:
    """Turns a request's credentials into a `Principal` (None: no credentials at all)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], required: bool = True) -> None:
        self.sessions = sessions
        self.required = required
        self.logins = LoginThrottle()
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._touched: dict[int, float] = {}
        self._generation = 0  # bumped by forget(): a lookup begun before it is not cached

    def forget(self) -> None:
        """Drop every cached lookup (after a key is revoked, a user disabled, a session ended)."""
        self._generation += 1
        self._cache.clear()

    async def principal(self, request: Request) -> Principal | None:
        if hasattr(request.state, "principal"):  # resolved once per request, whichever dependency asks first
            return request.state.principal
        principal = await self._resolve(request)
        request.state.principal = principal
        return principal

    async def _resolve(self, request: Request) -> Principal | None:
        if not self.required:
            return OPEN_ACCESS
        header = request.headers.get("authorization", "")
        if header.strip():  # an empty header is no credential (the tests' ANONYMOUS sends one)
            scheme, _, value = header.strip().partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise unauthorized("the Authorization header must be `Bearer <API key>`")
            principal = await self._cached("key:" + value.strip(), self._load_key)
            if principal is None:
                raise unauthorized("this API key is not valid: mistyped, expired or revoked (llmfl keys list)")
            return principal
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            return await self._cached("session:" + token, self._load_session)
        return None

    async def _cached(
        self, credential: str, load: Callable[[str], Coroutine[Any, Any, Principal | None]]
    ) -> Principal | None:
        cache_key = sha256_hex(credential)  # the credential itself is never held in memory longer than needed
        now = time.monotonic()
        hit = self._cache.get(cache_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        principal = await load(credential.partition(":")[2])
        if generation != self._generation:  # revoked or disabled while loading: it may be stale already
            return principal
        if len(self._cache) >= CACHE_ENTRIES:
            self._cache.clear()
        self._cache[cache_key] = (now + CACHE_S, principal)
        return principal

    async def _load_key(self, value: str) -> Principal | None:
        async with self.sessions() as session:
            principal = await authenticate_key(session, value)
            if principal is not None and principal.key_id is not None:
                now = time.monotonic()
                if now - self._touched.get(principal.key_id, -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
                    self._touched[principal.key_id] = now
                    await touch_key(session, principal.key_id)
                    await session.commit()
            return principal

    async def _load_session(self, token: str) -> Principal | None:
        async with self.sessions() as session:
            return await session_principal(session, token)


def unauthorized(message: str) -> HTTPException:
    return HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": "Bearer"})


NOT_SIGNED_IN = "sign in (the web pages) or send an API key: `Authorization: Bearer llmfl_...` (llmfl keys create)"


def authenticator_of(request: Request) -> Authenticator:
    return request.app.state.auth


def require(
    *permissions: Permission, csrf_on_reads: bool = False
) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency: the caller, who must hold one of `permissions`; 401 without credentials, 403 without
    the permission or (web sessions) without the CSRF token on a state-changing request (`csrf_on_reads`: on
    a GET too, for a read that makes something, which a link on another site must not set off)."""
    allowed_roles = sorted({role for permission in permissions for role in roles_with(permission)})

    async def caller(request: Request) -> Principal:
        principal = await authenticator_of(request).principal(request)
        if principal is None:
            raise unauthorized(NOT_SIGNED_IN)
        if not any(principal.may(permission) for permission in permissions):
            raise HTTPException(
                status_code=403,
                detail=f"the {principal.role} role may not do this (it is for: {', '.join(allowed_roles)})",
            )
        if (csrf_on_reads or request.method not in SAFE_METHODS) and principal.via == "session":
            sent = request.headers.get(CSRF_HEADER, "")
            if not principal.csrf_token or not hmac.compare_digest(sent.encode(), principal.csrf_token.encode()):
                raise HTTPException(
                    status_code=403, detail="missing or wrong X-CSRF-Token header (reload the page and try again)"
                )
        return principal

    caller.permissions = permissions  # type: ignore[attr-defined]  # read by the route × role tests
    caller.__name__ = f"require_{'_or_'.join(permissions)}"
    return caller


def annotator_name(principal: Principal, given: str | None, required: str | None = None) -> str | None:
    """Who a row is recorded as: the signed-in user. An admin may record on behalf of a named annotator
    (imports, the loop's simulated annotator); anyone else may only name themselves. With authentication off,
    the name the client gives. `required`: what the name is for, when there must be one (422 otherwise)."""
    if principal.user_id is None or given is None or given == principal.name:
        name = given if principal.user_id is None else principal.name
    elif principal.may(Permission.manage):
        name = given
    else:
        raise HTTPException(
            status_code=403,
            detail=f"annotator: you are signed in as {principal.name!r} and may only annotate as yourself",
        )
    if name is None and required is not None:
        raise HTTPException(status_code=422, detail=f"annotator: required ({required})")
    return name


def as_user(payload: Any, principal: Principal, required: str | None = None) -> Any:
    """The payload (a model with an `annotator` field) recorded as `annotator_name` says."""
    return payload.model_copy(update={"annotator": annotator_name(principal, payload.annotator, required)})
