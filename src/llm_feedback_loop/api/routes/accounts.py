"""Signing in and out, and (admins) users and API keys.

POST /v1/auth/login {"name", "password"}    → session cookie (HttpOnly) + CSRF cookie; {"name", "role"}
POST /v1/auth/logout                        → ends the session
GET  /v1/auth/me                            → who is calling, with which role and permissions
GET  /v1/users   POST /v1/users   PATCH /v1/users/{name}                   admin
GET  /v1/keys    POST /v1/keys    DELETE /v1/keys/{prefix}                 admin (a new key is shown once)
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from llm_feedback_loop.api.deps import Admin, SessionDep, SignedIn, StateDep
from llm_feedback_loop.api.security import CSRF_COOKIE, SESSION_COOKIE, authenticator_of
from llm_feedback_loop.auth import accounts
from llm_feedback_loop.auth.accounts import AccountError
from llm_feedback_loop.storage.tables import ApiKey, User

router = APIRouter(prefix="/v1", tags=["accounts"])

UserName = Annotated[str, Field(min_length=1, max_length=100)]


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: UserName
    password: Annotated[str, Field(min_length=1, max_length=1000)]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: UserName
    role: Literal["admin", "annotator", "viewer"]
    password: Annotated[str, Field(min_length=8, max_length=1000)] | None = None


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Annotated[str, Field(min_length=8, max_length=1000)] | None = None
    disabled: bool | None = None


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: UserName
    role: Literal["admin", "annotator", "viewer"] | None = Field(default=None, description="Default: the user's.")
    name: Annotated[str, Field(max_length=200)] | None = None
    expires_at: datetime | None = None


def account_error(error: AccountError) -> HTTPException:
    return HTTPException(status_code=422, detail=str(error))


def describe_user(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "disabled": user.disabled,
        "has_password": user.password_hash is not None,
        "created_at": user.created_at,
    }


def describe_key(key: ApiKey, owner: str) -> dict[str, Any]:
    return {
        "prefix": key.prefix,
        "user": owner,
        "role": key.role,
        "name": key.name,
        "state": accounts.key_state(key),
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


def set_session_cookies(request: Request, response: Response, token: str, csrf: str, hours: float) -> None:
    secure = request.url.scheme == "https"
    max_age = int(hours * 3600)
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="lax", secure=secure, path="/")
    # Readable by the pages' JavaScript, which repeats it in X-CSRF-Token; another site can neither read it
    # nor make the browser send the header.
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, httponly=False, samesite="strict", secure=secure, path="/")


@router.post("/auth/login")
async def login(body: LoginIn, request: Request, response: Response, session: SessionDep, state: StateDep) -> Any:
    """Sign in with a name and password: sets the session cookie. Ten failed sign-ins from an address within
    five minutes make it wait (429); so do ten for a name, at the addresses that failed for it
    (`LoginThrottle`)."""
    throttle = authenticator_of(request).logins
    address = request.client.host if request.client else "?"
    wait = throttle.retry_after(body.name, address)
    if wait > 0:
        raise HTTPException(
            status_code=429,
            detail=f"too many failed sign-ins; try again in {int(wait) + 1} s",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    async with throttle.checking():
        user = await accounts.login_with_password(session, body.name, body.password)
    if user is None:
        throttle.failed(body.name, address)
        raise HTTPException(status_code=401, detail="wrong name or password")
    throttle.succeeded(body.name, address)
    token, csrf = await accounts.create_web_session(session, user, state.settings.session_hours)
    await session.commit()
    set_session_cookies(request, response, token, csrf, state.settings.session_hours)
    return {"name": user.name, "role": user.role}


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, response: Response, session: SessionDep, user: SignedIn) -> None:
    """End this web session (a key is revoked with DELETE /v1/keys/{prefix} instead)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await accounts.end_web_session(session, token)
        await session.commit()
        authenticator_of(request).forget()
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


@router.get("/auth/me")
async def me(user: SignedIn) -> dict[str, Any]:
    """Who is calling: name, role, what the role may do, and how (key, session, open)."""
    return {"name": user.name, "role": user.role, "via": user.via, "permissions": sorted(user.permissions)}


@router.get("/users")
async def users(session: SessionDep, admin: Admin) -> list[dict[str, Any]]:
    """Every user, oldest first."""
    return [describe_user(user) for user in await accounts.list_users(session)]


@router.post("/users", status_code=201)
async def create_user(body: UserIn, session: SessionDep, admin: Admin) -> dict[str, Any]:
    """A new user; without a password they sign in through `llmfl users login-link` or use keys."""
    try:
        user = await accounts.create_user(session, body.name, body.role, body.password)
    except AccountError as error:
        raise account_error(error) from None
    await session.commit()
    return describe_user(user)


@router.patch("/users/{name}")
async def change_user(
    body: UserChange, request: Request, session: SessionDep, admin: Admin, name: Annotated[str, Path(max_length=100)]
) -> dict[str, Any]:
    """Set a password, or disable (enable) a user: a disabled user's sessions end and keys stop working."""
    try:
        user = await accounts.get_user(session, name)
        if body.password is not None:
            await accounts.set_password(session, user, body.password)
        if body.disabled is not None:
            if body.disabled and user.name == admin.name:
                raise AccountError("you cannot disable yourself")
            await accounts.set_disabled(session, user, body.disabled)
    except AccountError as error:
        raise account_error(error) from None
    await session.commit()
    authenticator_of(request).forget()
    return describe_user(user)


@router.get("/keys")
async def keys(session: SessionDep, admin: Admin) -> list[dict[str, Any]]:
    """Every API key (prefix, owner, role, state, last use); never a secret."""
    return [describe_key(key, owner) for key, owner in await accounts.list_keys(session)]


@router.post("/keys", status_code=201)
async def create_key(body: KeyIn, session: SessionDep, admin: Admin) -> dict[str, Any]:
    """A new key for a user. The answer's `key` is the only time the whole key is shown."""
    try:
        user = await accounts.get_user(session, body.user)
        key, full = await accounts.create_key(session, user, body.role, body.name, body.expires_at)
    except AccountError as error:
        raise account_error(error) from None
    await session.commit()
    return describe_key(key, user.name) | {"key": full}


@router.delete("/keys/{prefix}")
async def revoke_key(
    request: Request, session: SessionDep, admin: Admin, prefix: Annotated[str, Path(max_length=200)]
) -> dict[str, Any]:
    """Revoke a key: it stops working at once on this service."""
    try:
        key = await accounts.revoke_key(session, prefix)
    except AccountError as error:
        raise HTTPException(status_code=404, detail=str(error)) from None
    await session.commit()
    authenticator_of(request).forget()
    owner = await session.get(User, key.user_id)
    return describe_key(key, owner.name if owner else "?")
