"""`Idempotency-Key` on POSTs: a retried write answered with the first answer, its rows stored once."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from fastapi import HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_feedback_loop.api.guards.asgi import header, json_error, no_receive, read_body, refuse, replay
from llm_feedback_loop.auth.accounts import Principal
from llm_feedback_loop.storage.tables import IdempotencyRecord, utc_now

log = logging.getLogger(__name__)

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
        raw_key = header(scope, IDEMPOTENCY_HEADER)
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
            response: Response = json_error(
                422,
                "Idempotency-Key reused with a different request (method, path, query or body): send a new key "
                "for a new request",
            )
        elif first.status_code is None:
            response = json_error(
                409, "a request with this Idempotency-Key is still in flight: retry once it has been answered"
            )
            response.headers["Retry-After"] = "1"
        elif first.body is None:
            response = json_error(
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
