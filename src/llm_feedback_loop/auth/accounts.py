"""Users, API keys and web sessions in the database: plain functions over a session, used by the CLI
(`llmfl users`, `llmfl keys`), the API (`/v1/users`, `/v1/keys`, login) and the inference server alike.

Errors a caller can meet are `AccountError`, with a message that says what to do.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.auth.credentials import (
    dummy_password_hash,
    hash_password,
    new_api_key,
    new_token,
    secret_matches,
    sha256_hex,
    split_api_key,
    verify_password,
)
from llm_feedback_loop.auth.roles import ROLE_PERMISSIONS, Permission, Role, key_role_allowed, parse_role
from llm_feedback_loop.storage.tables import ApiKey, User, WebSession, utc_now

FIRST_ADMIN = "admin"
SERVICE_USER = "llmfl-loop"  # owns the short-lived keys `llmfl loop` gives itself for the service it starts
LOGIN_LINK_HOURS = 24.0
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
MIN_PASSWORD = 8


class AccountError(ValueError):
    """A request about accounts that cannot be done, with the reason."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user through an API key or a web session, or anyone when authentication is off."""

    user_id: int | None
    name: str | None
    role: Role
    via: str  # key | session | open
    key_id: int | None = None
    csrf_token: str | None = None  # web sessions: the token every state-changing request must repeat

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS[self.role]

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions


OPEN_ACCESS = Principal(user_id=None, name=None, role=Role.admin, via="open")


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise AccountError(
            f"user name {name!r} is not allowed: 1-100 letters, digits and . _ @ -, starting with a letter or digit"
        )
    return name


async def _hash(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)  # Argon2 is slow by design: not on the event loop


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD or len(password) > 1000:
        raise AccountError(f"a password needs {MIN_PASSWORD} to 1000 characters")
    return password


def _role(value: str) -> Role:
    try:
        return parse_role(value)
    except ValueError as error:
        raise AccountError(str(error)) from None


async def find_user(session: AsyncSession, name: str) -> User | None:
    if "\x00" in name or len(name) > 200:  # no such name can exist (and PostgreSQL refuses NUL in a query)
        return None
    return (await session.execute(select(User).where(User.name == name))).scalar_one_or_none()


async def get_user(session: AsyncSession, name: str) -> User:
    user = await find_user(session, name)
    if user is None:
        raise AccountError(f"no user {name!r} (llmfl users list)")
    return user


async def create_user(session: AsyncSession, name: str, role: str, password: str | None = None) -> User:
    check_name(name)
    parsed = _role(role)
    if await find_user(session, name) is not None:
        raise AccountError(f"a user named {name!r} exists already")
    user = User(
        name=name,
        role=parsed.value,
        password_hash=await _hash(check_password(password)) if password else None,
        disabled=False,
    )
    session.add(user)
    await session.flush()
    return user


async def set_password(session: AsyncSession, user: User, password: str) -> None:
    user.password_hash = await _hash(check_password(password))
    await session.execute(delete(WebSession).where(WebSession.user_id == user.id))  # sign out everywhere


async def set_disabled(session: AsyncSession, user: User, disabled: bool) -> None:
    user.disabled = disabled
    if disabled:
        await session.execute(delete(WebSession).where(WebSession.user_id == user.id))


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.execute(select(User).order_by(User.id))).scalars())


async def create_key(
    session: AsyncSession,
    user: User,
    role: str | None = None,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key for `user`; returns the row and the full key (shown once: only its hash is kept)."""
    key_role = Role(user.role) if role is None else _role(role)
    if not key_role_allowed(Role(user.role), key_role):
        raise AccountError(f"user {user.name!r} is {user.role}: it cannot hold a key with the {key_role} role")
    if expires_at is not None:
        try:  # a time without a zone is UTC; one at the calendar's edge cannot be held in UTC
            expires_at = expires_at.replace(tzinfo=UTC) if expires_at.tzinfo is None else expires_at.astimezone(UTC)
        except OverflowError:
            raise AccountError("the key's expiry is out of range") from None
        if expires_at <= utc_now():
            raise AccountError("the key's expiry must lie in the future")
    if name is not None and (len(name) > 200 or "\x00" in name):
        raise AccountError("a key's name has at most 200 characters")
    new = new_api_key()
    key = ApiKey(
        prefix=new.prefix,
        secret_hash=new.secret_hash,
        user_id=user.id,
        role=key_role.value,
        name=name,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    return key, new.full


async def list_keys(session: AsyncSession, user: User | None = None) -> list[tuple[ApiKey, str]]:
    """Keys (with their owner's name), oldest first."""
    query = select(ApiKey, User.name).join(User, User.id == ApiKey.user_id).order_by(ApiKey.id)
    if user is not None:
        query = query.where(ApiKey.user_id == user.id)
    return [(key, owner) for key, owner in (await session.execute(query)).all()]


async def revoke_key(session: AsyncSession, reference: str) -> ApiKey:
    """Revoke a key named by its prefix (or the whole key)."""
    parts = split_api_key(reference)
    prefix = parts[0] if parts else reference.removeprefix("llmfl_")
    key = None
    if "\x00" not in prefix and len(prefix) <= 32:
        key = (await session.execute(select(ApiKey).where(ApiKey.prefix == prefix))).scalar_one_or_none()
    if key is None:
        raise AccountError(f"no API key {reference!r} (llmfl keys list shows their prefixes)")
    if key.revoked_at is None:
        key.revoked_at = utc_now()
    return key


def key_state(key: ApiKey, now: datetime | None = None) -> str:
    now = now or utc_now()
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


async def authenticate_key(session: AsyncSession, value: str) -> Principal | None:
    """The principal of a valid, unexpired, unrevoked key of an enabled user; None otherwise."""
    parts = split_api_key(value)
    if parts is None:
        return None
    prefix, secret = parts
    if "\x00" in prefix:
        return None
    found = (
        await session.execute(select(ApiKey, User).join(User, User.id == ApiKey.user_id).where(ApiKey.prefix == prefix))
    ).first()
    if found is None:
        return None
    key, user = found
    if not secret_matches(secret, key.secret_hash) or key_state(key) != "active" or user.disabled:
        return None
    return Principal(user_id=user.id, name=user.name, role=Role(key.role), via="key", key_id=key.id)


async def touch_key(session: AsyncSession, key_id: int) -> None:
    key = await session.get(ApiKey, key_id)
    if key is not None:
        key.last_used_at = utc_now()


async def login_with_password(session: AsyncSession, name: str, password: str) -> User | None:
    user = await find_user(session, name)
    stored = user.password_hash if user is not None and user.password_hash else None
    stored = stored or await asyncio.to_thread(dummy_password_hash)
    verified = await asyncio.to_thread(verify_password, password, stored)  # Argon2: ~50 ms of CPU, off the loop
    if user is None or user.password_hash is None or user.disabled or not verified:
        return None
    return user


async def create_web_session(session: AsyncSession, user: User, hours: float) -> tuple[str, str]:
    """A new web session for `user`: (token for the HttpOnly cookie, CSRF token)."""
    token, csrf = new_token(), new_token()
    session.add(
        WebSession(
            token_hash=sha256_hex(token),
            kind="session",
            user_id=user.id,
            csrf_token=csrf,
            expires_at=utc_now() + timedelta(hours=hours),
        )
    )
    await session.execute(delete(WebSession).where(WebSession.expires_at <= utc_now()))
    return token, csrf


async def create_login_link(session: AsyncSession, user: User, hours: float = LOGIN_LINK_HOURS) -> str:
    """A one-time login token for `user` (as Jupyter prints its token): `/login?token=...` signs in once."""
    token = new_token()
    session.add(
        WebSession(
            token_hash=sha256_hex(token),
            kind="link",
            user_id=user.id,
            csrf_token=new_token(),
            expires_at=utc_now() + timedelta(hours=hours),
        )
    )
    await session.flush()
    return token


async def use_login_link(session: AsyncSession, token: str) -> User | None:
    """The user of an unused, unexpired login link, which is used up by this call; None otherwise."""
    if len(token) > 200:
        return None
    link = (
        await session.execute(
            select(WebSession).where(WebSession.token_hash == sha256_hex(token), WebSession.kind == "link")
        )
    ).scalar_one_or_none()
    if link is None:
        return None
    # Deleted by a statement that names it: of two concurrent uses, only one deletes a row.
    deleted = await session.execute(delete(WebSession).where(WebSession.id == link.id))
    if deleted.rowcount != 1 or link.expires_at <= utc_now():
        return None
    user = await session.get(User, link.user_id)
    return None if user is None or user.disabled else user


async def session_principal(session: AsyncSession, token: str) -> Principal | None:
    if len(token) > 200:
        return None
    found = (
        await session.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.token_hash == sha256_hex(token), WebSession.kind == "session")
        )
    ).first()
    if found is None:
        return None
    web_session, user = found
    if web_session.expires_at <= utc_now() or user.disabled:
        return None
    return Principal(
        user_id=user.id, name=user.name, role=Role(user.role), via="session", csrf_token=web_session.csrf_token
    )


async def end_web_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(WebSession).where(WebSession.token_hash == sha256_hex(token)))


async def ensure_first_admin(session: AsyncSession) -> str | None:
    """On a database with no admin: create the `admin` user and return a one-time login token for it.
    None when an admin exists already."""
    admins = select(func.count()).select_from(User).where(User.role == Role.admin.value, User.name != SERVICE_USER)
    if int((await session.execute(admins)).scalar_one()) > 0:
        return None
    name, number = FIRST_ADMIN, 1
    while await find_user(session, name) is not None:  # `admin` taken by a user of another role: never promote it
        number += 1
        name = f"{FIRST_ADMIN}-{number}"
    user = await create_user(session, name, Role.admin.value)
    return await create_login_link(session, user)


async def key_for_role(
    session: AsyncSession,
    role: str,
    user_name: str | None = None,
    label: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str, User]:
    """A new key with `role` for `user_name`, by default a user named after the role (`admin`, `annotator`,
    `viewer`), created without a password if missing. Returns the key row, the full key and its user."""
    name = user_name or _role(role).value
    user = await find_user(session, name)
    if user is None:
        user = await create_user(session, name, role)
    key, full = await create_key(session, user, role, label, expires_at)
    return key, full, user


async def service_key(session: AsyncSession, purpose: str, hours: float = 24.0 * 7) -> tuple[ApiKey, str]:
    """A short-lived admin key of the service user, for a process that starts its own service (the loop)."""
    user = await find_user(session, SERVICE_USER) or await create_user(session, SERVICE_USER, Role.admin.value)
    return await create_key(session, user, Role.admin.value, purpose[:200], utc_now() + timedelta(hours=hours))
