"""ASGI middleware of both servers: trusted hosts, cross-origin writes, security headers, body size limit,
and `Idempotency-Key` on POSTs.

Pure ASGI (not `BaseHTTPMiddleware`): no task per request, and streaming responses pass through untouched.
A request that is refused before its body was read has the rest of its body read and discarded first (a
bounded amount): clients that write the whole body before reading the answer (`urllib`, `requests`) otherwise
meet a connection reset instead of the refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Iterable
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_feedback_loop.api.security import SAFE_METHODS
from llm_feedback_loop.auth.accounts import Principal
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.tables import IdempotencyRecord, utc_now

log = logging.getLogger(__name__)

DRAIN_S = 5.0  # how long a refused request's remaining body is read before the answer goes anyway

# Pages are served without inline script, so the policy can forbid it: an injected <script> does not run.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
CSP_HEADER_VALUE = CONTENT_SECURITY_POLICY.encode()
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


# --- refusing a request ---------------------------------------------------------------------------------------


async def drain(receive: Receive, limit_bytes: int, timeout_s: float = DRAIN_S) -> None:
    """Read and discard what is left of the request body, at most about `limit_bytes` and for `timeout_s`."""
    drained = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            while drained <= limit_bytes:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
                drained += len(message.get("body", b""))


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status_code: int,
    message: str,
    drain_bytes: int,
    body_read: bool = False,
) -> None:
    """Answer `status_code` with `message` (the project's error shape), after draining the body (unless
    `body_read`). The connection is closed after the answer to a request that had a body: what is left of it,
    if the drain stopped early, must not be read as the next request."""
    headers: dict[str, str] = {}
    if scope["type"] == "http":
        length = _header(scope, b"content-length")
        has_body = body_read or (length is not None and length != b"0") or _header(scope, b"transfer-encoding")
        if has_body:
            headers["Connection"] = "close"
        # A client waiting for `100 Continue` has sent nothing yet (reading would invite it to); a body
        # announced as larger than the bound is not worth reading.
        expects_continue = (_header(scope, b"expect") or b"").lower() == b"100-continue"
        too_long = length is not None and length.isdigit() and int(length) > drain_bytes
        if has_body and not (body_read or expects_continue or too_long):
            await drain(receive, drain_bytes)
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    response = JSONResponse(status_code=status_code, content={"message": message, "detail": message}, headers=headers)
    await response(scope, receive, send)


# --- Host, Origin, headers ----------------------------------------------------------------------------------------


def host_name(host: str) -> str:
    """The name in a Host header, without its port: `example.com:8000` → `example.com`, `[::1]:80` → `[::1]`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() and ":" not in name else host


class TrustedHosts:
    """Answers only requests whose Host header is one of `hosts` (`*` any, `*.example.com` its subdomains):
    a DNS-rebinding page, whose requests carry the attacker's name, gets 400."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str], drain_bytes: int) -> None:
        self.app = app
        names = [name.strip().lower() for name in hosts]
        self.any = "*" in names
        self.exact = frozenset(name for name in names if not name.startswith("*."))
        self.suffixes = tuple(name[1:] for name in names if name.startswith("*."))
        self.drain_bytes = drain_bytes

    def trusts(self, host: str) -> bool:
        name = host_name(host)
        bare = name.strip("[]")
        return name in self.exact or bare in self.exact or bool(self.suffixes and name.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = (_header(scope, b"host") or b"").decode("latin-1")
        if self.trusts(host):
            await self.app(scope, receive, send)
            return
        shown = host[:100] if host else "(none)"
        await refuse(
            scope,
            receive,
            send,
            400,
            f"Host header {shown!r} is not in TRUSTED_HOSTS: add the name this service is reached by to "
            "TRUSTED_HOSTS (a comma-separated list, `*` for any)",
            self.drain_bytes,
        )


class NoNulInURL:
    """A NUL character (`%00`) in the path or query is refused with 400: PostgreSQL cannot hold one, and a
    filter or name carrying it would otherwise end in a database error (a 500) on any route."""

    def __init__(self, app: ASGIApp, drain_bytes: int) -> None:
        self.app = app
        self.drain_bytes = drain_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").lower()
            if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
                await refuse(
                    scope, receive, send, 400, "the URL must not contain the NUL character (%00)", self.drain_bytes
                )
                return
        await self.app(scope, receive, send)


def _origin_parts(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of `scheme://host[:port]`, the default port filled in; None if it is not one."""
    try:
        parts = urlsplit(origin)
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        return None
    if scheme not in ("http", "https") or not host:
        return None
    return scheme, host, port if port is not None else (443 if scheme == "https" else 80)


class SameOriginWrites:
    """Refuses state-changing requests a browser sends on behalf of another site (CSRF, including the
    `text/plain` POSTs that need no CORS preflight). Requests without an Origin header (scripts, curl, SDKs)
    pass: only browsers send one, and a browser always does on a cross-origin write."""

    def __init__(self, app: ASGIApp, drain_bytes: int) -> None:
        self.app = app
        self.drain_bytes = drain_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or (kind == "http" and scope["method"] in SAFE_METHODS):
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        fetch_site = _header(scope, b"sec-fetch-site")
        if origin is None and fetch_site != b"cross-site":
            await self.app(scope, receive, send)
            return
        scheme = {"ws": "http", "wss": "https"}.get(scope["scheme"], scope["scheme"])
        own = f"{scheme}://{(_header(scope, b'host') or b'').decode('latin-1')}"
        if fetch_site == b"cross-site":
            reason = "the browser marks it as sent by another site (Sec-Fetch-Site: cross-site)"
        else:
            sent = (origin or b"").decode("latin-1")
            own_parts = _origin_parts(own)
            if own_parts is not None and _origin_parts(sent) == own_parts:
                await self.app(scope, receive, send)
                return
            reason = f"it comes from {sent[:100]!r}, not from this service ({own[:100]!r})"
        await refuse(
            scope,
            receive,
            send,
            403,
            f"cross-origin request refused: {reason}. Use this service's own pages, or call it from a script "
            "(which sends no Origin header)",
            self.drain_bytes,
        )


class SecurityHeaders:
    """Adds `nosniff`, `Referrer-Policy` and `X-Frame-Options` to every response, and the Content-Security-Policy
    to HTML pages (not to `csp_exempt`: FastAPI's /docs and /redoc load their scripts from a CDN)."""

    def __init__(self, app: ASGIApp, csp_exempt: Iterable[str] = ()) -> None:
        self.app = app
        self.csp_exempt = frozenset(csp_exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with_csp = scope["path"] not in self.csp_exempt

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(header for header in SECURITY_HEADERS if header[0] not in present)
                if with_csp and b"content-security-policy" not in present:
                    content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
                    if content_type.lower().startswith(b"text/html"):
                        headers.append((b"content-security-policy", CSP_HEADER_VALUE))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- body size -------------------------------------------------------------------------------------------------


class BodySizeLimit:
    """Refuses request bodies over `max_bytes` with 413, whether or not Content-Length is sent. The rest of a
    refused body is read and discarded (up to `drain_bytes`) so that the client can read the 413."""

    def __init__(self, app: ASGIApp, max_bytes: int, drain_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes if drain_bytes is not None else 8 * max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        # Read the body first (at most max_bytes + one chunk), then replay it to the app.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, replay([], message), send)
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                if not message.get("more_body", False):
                    await self._refuse(scope, receive, send, body_read=True)
                else:
                    await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay(chunks, None, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, body_read: bool = False) -> None:
        message = (
            f"Request body is larger than the limit of {self.max_bytes} bytes (MAX_BODY_BYTES): send less "
            "per request (split a batch), or raise MAX_BODY_BYTES"
        )
        await refuse(scope, receive, send, 413, message, self.drain_bytes, body_read=body_read)


async def no_receive() -> Message:
    return {"type": "http.disconnect"}


async def read_body(receive: Receive) -> bytes | Message:
    """The whole request body; or, when the client left before sending it all, the message that said so."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def replay(chunks: list[bytes], first: Message | None, then: Receive = no_receive) -> Receive:
    """A `receive` that hands out the buffered body in one message, then defers to `then`."""
    pending: list[Message] = (
        [first] if first is not None else [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
    )

    async def receive() -> Message:
        if pending:
            return pending.pop()
        return await then()

    return receive


# --- Idempotency-Key ----------------------------------------------------------------------------------------------

IDEMPOTENCY_HEADER = b"idempotency-key"
MAX_KEY_CHARS = 200
KEEP_FOR = timedelta(hours=24)  # how long a key's first answer is replayed
IN_FLIGHT_FOR = timedelta(minutes=15)  # a first request unanswered this long died with its process
MAX_KEPT_BODY = 1_048_576
SWEEP_EVERY = timedelta(minutes=10)  # expired records are deleted at most this often per process


# Answers that hold a secret (a new API key) or set a cookie (a login) are never kept.
NOT_KEPT_PREFIXES = ("/v1/auth/", "/v1/keys", "/v1/users")


def idempotency_scope(principal: Principal, key: str) -> str:
    """The record's `scope`: the caller (user, and the key or session it came with, and its role) and the key,
    so that one caller's key never answers another's, nor a lower-role key of the same user."""
    caller = "open" if principal.user_id is None else f"user:{principal.user_id}:{principal.via}:{principal.key_id}"
    return hashlib.sha256(f"{caller}:{principal.role}\n{key}".encode()).hexdigest()


def request_fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b""), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


class IdempotentPosts:
    """`Idempotency-Key: <key>` on a POST: the first successful answer is kept (24 h) and a retry with the same
    key from the same caller gets it again (`Idempotent-Replayed: true`) without running, so a retried write
    stores its rows once. The same key with another request → 422; while the first is still running → 409.

    Only answers under 400 are kept: a refused or failed request created nothing, and may be retried with the
    same key once fixed. Skipped (the request runs as usual) for callers that cannot be authenticated (the
    route answers 401) and on a server without a feedback database (the inference server creates no rows).
    Without the header it costs one scan of the request's headers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._swept_at = utc_now() - SWEEP_EVERY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw_key = _header(scope, IDEMPOTENCY_HEADER)
        if raw_key is None or scope["path"].startswith(NOT_KEPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1").strip()
        if not (0 < len(key) <= MAX_KEY_CHARS and key.isascii() and key.isprintable()):
            await refuse(
                scope,
                receive,
                send,
                400,
                f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable ASCII characters (a UUID is a good key)",
                MAX_KEPT_BODY,
            )
            return
        app_state = scope["app"].state if "app" in scope else None
        service = getattr(app_state, "service", None)
        auth = getattr(app_state, "auth", None)
        if service is None or auth is None:
            await self.app(scope, receive, send)
            return
        try:
            principal = await auth.principal(Request(scope))
        except HTTPException:
            principal = None
        if principal is None:
            await self.app(scope, receive, send)
            return

        body = await read_body(receive)  # already bounded and buffered by BodySizeLimit (outside this one)
        if not isinstance(body, bytes):
            await self.app(scope, replay([], body), send)
            return
        record_scope = idempotency_scope(principal, key)
        fingerprint = request_fingerprint(scope, body)
        sessions: async_sessionmaker[AsyncSession] = service.sessions

        claimed = await self._claim(sessions, record_scope, fingerprint)
        if isinstance(claimed, IdempotencyRecord):
            await self._answer_retry(claimed, fingerprint, scope, send)
            return
        await self._run_first(sessions, claimed, scope, replay([body], None, receive), send)

    async def _claim(
        self, sessions: async_sessionmaker[AsyncSession], record_scope: str, fingerprint: str
    ) -> int | IdempotencyRecord:
        """Insert the in-flight record and return its id (this request runs), or the record a first request
        left (this one is a retry)."""
        for _ in range(3):
            async with sessions() as session:
                record = IdempotencyRecord(scope=record_scope, request_hash=fingerprint)
                session.add(record)
                try:
                    await session.commit()
                    return record.id
                except IntegrityError:  # the unique scope: another request holds the key
                    await session.rollback()
                first = await session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.scope == record_scope))
                if first is None:
                    continue  # released (failed) since our insert: claim it again
                now = utc_now()
                expired = first.created_at < now - KEEP_FOR
                abandoned = first.status_code is None and first.created_at < now - IN_FLIGHT_FOR
                if not (expired or abandoned):
                    return first
                await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == first.id))
                await session.commit()
        # Claimed and released three times over by others: answer as if in flight (409, retry).
        return IdempotencyRecord(scope=record_scope, request_hash=fingerprint, status_code=None)

    async def _answer_retry(self, first: IdempotencyRecord, fingerprint: str, scope: Scope, send: Send) -> None:
        if first.request_hash != fingerprint:
            response: Response = _error(
                422,
                "Idempotency-Key reused with a different request (method, path, query or body): send a new key "
                "for a new request",
            )
        elif first.status_code is None:
            response = _error(
                409, "a request with this Idempotency-Key is still in flight: retry once it has been answered"
            )
            response.headers["Retry-After"] = "1"
        elif first.body is None:
            response = _error(
                409,
                f"the request with this Idempotency-Key was answered {first.status_code}, but that answer was too "
                "large to keep; it is not run again (read its result with a GET)",
            )
        else:
            response = Response(
                content=first.body.encode(),
                status_code=first.status_code,
                media_type=first.content_type,
                headers={"Idempotent-Replayed": "true"},
            )
        await response(scope, no_receive, send)

    async def _run_first(
        self, sessions: async_sessionmaker[AsyncSession], record_id: int, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run the request, passing its answer through as it comes (streams too), and keep the answer before its
        last part goes out: a client that has the answer finds it kept when it retries."""
        answer = _Answer()

        async def capture(message: Message) -> None:
            if not answer.complete:
                answer.add(message)
                if answer.complete:
                    await self._settle(sessions, record_id, answer)
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            if not answer.complete:
                await self._release(sessions, record_id)
            raise
        if not answer.complete:  # no complete answer went out (the client left): a retry runs again
            await self._release(sessions, record_id)

    async def _settle(self, sessions: async_sessionmaker[AsyncSession], record_id: int, answer: _Answer) -> None:
        if answer.status_code >= 400 or not answer.replayable:
            await self._release(sessions, record_id)
            return
        now = utc_now()
        try:
            async with sessions() as session:
                await session.execute(
                    update(IdempotencyRecord)
                    .where(IdempotencyRecord.id == record_id)  # by id: a record taken over as abandoned is not ours
                    .values(status_code=answer.status_code, content_type=answer.content_type, body=answer.text())
                )
                if now - self._swept_at >= SWEEP_EVERY:
                    self._swept_at = now
                    await session.execute(
                        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - KEEP_FOR)
                    )
                await session.commit()
        except Exception:  # the request's own work is committed: its answer goes out regardless
            log.exception("could not keep the answer for an Idempotency-Key; retries get 409 for %s", IN_FLIGHT_FOR)

    async def _release(self, sessions: async_sessionmaker[AsyncSession], record_id: int) -> None:
        """Delete the in-flight record, so that a retry runs the request again."""
        try:
            async with sessions() as session:
                await session.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.id == record_id, IdempotencyRecord.status_code.is_(None)
                    )
                )
                await session.commit()
        except Exception:
            log.exception("could not release an Idempotency-Key; retries get 409 for %s", IN_FLIGHT_FOR)


class _Answer:
    """The answer to a first request with an Idempotency-Key, as far as it is kept."""

    def __init__(self) -> None:
        self.status_code = 0
        self.content_type: str | None = None
        self.replayable = True  # False: an answer with cookies, which a replay would lose (a login)
        self.chunks: list[bytes] | None = []  # None: too large to keep, the status alone is
        self.size = 0
        self.complete = False

    def add(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status_code = message["status"]
            for name, value in message.get("headers", ()):
                if name.lower() == b"content-type":
                    self.content_type = value.decode("latin-1")[:100]
                elif name.lower() == b"set-cookie":
                    self.replayable = False
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            self.size += len(chunk)
            if self.size > MAX_KEPT_BODY:
                self.chunks = None
            elif self.chunks is not None:
                self.chunks.append(chunk)
            self.complete = not message.get("more_body", False)

    def text(self) -> str | None:
        """The body to keep (None: too large, or not text, which the column cannot hold)."""
        if self.chunks is None:
            return None
        try:
            return b"".join(self.chunks).decode()
        except UnicodeDecodeError:
            return None


def _error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status_code, content={"message": message, "detail": message})


def install_http_guards(app: FastAPI, settings: Settings) -> None:
    """The middleware both servers run. Outermost first: security headers (on every answer, refusals too),
    trusted hosts, NUL in the URL, cross-origin writes, body size, idempotency (innermost: it needs the bounded
    body)."""
    drain_bytes = max(8 * settings.max_body_bytes, 4 * 1_048_576)
    docs = {path for path in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if path}
    # add_middleware puts each one outside the ones before it: innermost first.
    app.add_middleware(IdempotentPosts)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, drain_bytes=drain_bytes)
    app.add_middleware(SameOriginWrites, drain_bytes=drain_bytes)
    app.add_middleware(NoNulInURL, drain_bytes=drain_bytes)
    app.add_middleware(TrustedHosts, hosts=settings.trusted_hosts, drain_bytes=drain_bytes)
    app.add_middleware(SecurityHeaders, csp_exempt=docs)
