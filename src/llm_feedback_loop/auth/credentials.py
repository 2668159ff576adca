"""Credentials: API keys, session tokens and password hashes.

An API key is `llmfl_<prefix>_<secret>`: the prefix (8 characters) is stored as it is, to find the key and to
show it in lists; the 256-bit secret only as its SHA-256. A secret that random needs no slow hash (Langfuse
moved its keys from bcrypt to SHA-256 for the per-request cost); passwords, which people choose, get Argon2.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import lru_cache

KEY_START = "llmfl_"
_PREFIX_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no look-alikes (l/1, o/0)


@dataclass(frozen=True)
class NewKey:
    full: str  # shown once, never stored
    prefix: str
    secret_hash: str


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_api_key() -> NewKey:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
    secret = secrets.token_urlsafe(32)
    return NewKey(f"{KEY_START}{prefix}_{secret}", prefix, sha256_hex(secret))


def split_api_key(value: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    if not value.startswith(KEY_START) or len(value) > 200:
        return None
    prefix, _, secret = value[len(KEY_START) :].partition("_")
    if len(prefix) != 8 or not secret:
        return None
    return prefix, secret


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(sha256_hex(secret), stored_hash)


def new_token() -> str:
    """A session token, a one-time login token or a CSRF token."""
    return secrets.token_urlsafe(32)


@lru_cache(maxsize=1)
def _password_hasher():
    from pwdlib import PasswordHash

    return PasswordHash.recommended()  # Argon2id


def hash_password(password: str) -> str:
    return _password_hasher().hash(password)


def verify_password(password: str, stored_hash: str) -> bool:
    try:
        return bool(_password_hasher().verify(password, stored_hash))
    except Exception:  # a malformed stored hash is a failed login, not an error page
        return False


# A hash to verify against when the user does not exist, so that a wrong name costs as long as a wrong password.
@lru_cache(maxsize=1)
def dummy_password_hash() -> str:
    return hash_password(new_token())
