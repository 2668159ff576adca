"""Secrets out of logs and error messages: `redact(text)`, `url_without_credentials(url)`, what a client may be
told of a failed request to a provider (`failure_reason`), and `install_log_redaction()`, which both servers
call at start so that no log record carries a key.

What is redacted: our API keys (`llmfl_<prefix>_<secret>` keeps its prefix, which `llmfl keys list` shows, to
tell which key it was), `Bearer`/`Basic` credentials, `sk-...`-style provider keys (OpenAI, OpenRouter,
Anthropic) and Hugging Face tokens, the password of any `scheme://user:password@host` URL (CHAT_PROVIDER_URL,
DATABASE_URL), and the values of query parameters that carry secrets (`?api_key=`, `?token=`, ...).

Redaction happens where a record is made (the record factory), not in one handler: uvicorn configures its
handlers after the app is built, and a test's `caplog` adds its own; a record made anywhere in the process is
clean for every handler that sees it.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    import httpx

REDACTED = "***"

# Query parameters whose value is a credential (lower-cased, `-` read as `_`).
SECRET_PARAMETERS = frozenset(
    {"api_key", "apikey", "key", "token", "access_token", "auth", "password", "secret", "sig", "signature"}
)

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(llmfl_[a-z0-9]{8}_)[A-Za-z0-9_\-]+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"\b(Bearer\s+)[A-Za-z0-9._~+/=\-]+", re.IGNORECASE), rf"\g<1>{REDACTED}"),
    (re.compile(r"\b(Basic\s+)[A-Za-z0-9+/]+=*"), rf"\g<1>{REDACTED}"),  # capital B: not the English word
    # Provider keys: long enough that `sk-learn` and `hf_hub_download` in a traceback stay readable.
    (re.compile(r"\b(sk-)[A-Za-z0-9_\-]{16,}"), rf"\g<1>{REDACTED}"),
    (re.compile(r"\b(hf_)[A-Za-z0-9]{30,}"), rf"\g<1>{REDACTED}"),
    # scheme://user:password@host → scheme://user:***@host (the user name helps to tell which account).
    (re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@]*):[^\s/?#@]+@"), rf"\g<1>:{REDACTED}@"),
    (
        re.compile(
            r"([?&](?:" + "|".join(sorted(SECRET_PARAMETERS)).replace("_", "[_-]") + r")=)[^&\s#'\"]+", re.IGNORECASE
        ),
        rf"\g<1>{REDACTED}",
    ),
]


def redact(text: str) -> str:
    """`text` with every credential it holds replaced by `***`."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def url_without_credentials(url: str) -> str:
    """`url` as it may be shown to anyone: no `user:password@`, no secret query values."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # not a URL a client could use either: show only what is not a credential
        return redact(url)
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    query = urlencode(
        [
            (name, REDACTED if name.lower().replace("-", "_") in SECRET_PARAMETERS else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def split_userinfo(url: str) -> tuple[str, httpx.BasicAuth | None]:
    """`https://user:pass@host/v1` → (`https://host/v1`, Basic auth for user:pass): the client holds no URL with
    a password in it, so neither do the requests and errors it makes."""
    import httpx

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    netloc = parts.netloc.rpartition("@")[2]
    auth = httpx.BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), auth


# ---- failed requests to other endpoints (chat providers, judges) -------------------------------------------
class UpstreamStatus(RuntimeError):
    """The endpoint answered with an error status; `body` is for the server log only."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


def status_text(status: int) -> str:
    """`401 Unauthorized`: the standard reason, not the one the endpoint sent (which it chooses)."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def failure_reason(error: BaseException) -> str:
    """What a client may be told of a failed request to an OpenAI-compatible endpoint: no body, no URL, no
    credential."""
    import httpx  # here, not at the top: the CLI imports this module and starts faster without it

    if isinstance(error, UpstreamStatus):
        return f"it answered {status_text(error.status)}"
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.TransportError):
        return f"could not reach it ({type(error).__name__})"
    if isinstance(error, (KeyError, IndexError, TypeError, ValueError)):
        return f"its answer is not an OpenAI chat completion ({type(error).__name__})"
    return f"the request failed ({type(error).__name__})"


def failure_detail(error: BaseException) -> str:
    """The same failure for the server log: with the start of the endpoint's body, keys redacted."""
    if isinstance(error, UpstreamStatus):
        return redact(f"{status_text(error.status)}: {error.body[:300]}")
    return redact(f"{type(error).__name__}: {error}")


# ---- log records -------------------------------------------------------------------------------------------
def _redact_argument(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(value if isinstance(value, str) else str(value))


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """The record with its message, arguments, exception text and stack redacted. The arguments keep their
    places (uvicorn's access formatter unpacks them); an object among them is replaced by its redacted text."""
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    else:
        record.msg = _redact_argument(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_redact_argument(value) for value in record.args)
    elif isinstance(record.args, dict):
        record.args = {name: _redact_argument(value) for name, value in record.args.items()}
    color_message = getattr(record, "color_message", None)  # uvicorn's coloured twin of `msg`
    if isinstance(color_message, str):
        record.color_message = redact(color_message)
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactSecrets(logging.Filter):
    """A filter for one handler or logger (the record factory installed by `install_log_redaction` already
    covers every record; this is for handlers of programs that do not call it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_log_redaction() -> None:
    """Redact every log record this process makes from now on (idempotent)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "redacts_secrets", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(current(*args, **kwargs))

    factory.redacts_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
