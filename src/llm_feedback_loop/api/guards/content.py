"""What a request may carry: no NUL character in its URL, a body no larger than MAX_BODY_BYTES."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from llm_feedback_loop.api.guards.asgi import header, refuse, replay


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
        length = header(scope, b"content-length")
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
