"""What the guards share: reading a header, refusing a request (its body drained first), and reading the whole
body once and replaying it to the app.

A request that is refused before its body was read has the rest of its body read and discarded first (a
bounded amount): clients that write the whole body before reading the answer (`urllib`, `requests`) otherwise
meet a connection reset instead of the refusal.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

DRAIN_S = 5.0  # how long a refused request's remaining body is read before the answer goes anyway


def header(scope: Scope, name: bytes) -> bytes | None:
    """The value of the request header `name` (lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def json_error(status_code: int, message: str) -> JSONResponse:
    """An answer in the project's error shape."""
    return JSONResponse(status_code=status_code, content={"message": message, "detail": message})


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
        length = header(scope, b"content-length")
        has_body = body_read or (length is not None and length != b"0") or header(scope, b"transfer-encoding")
        if has_body:
            headers["Connection"] = "close"
        # A client waiting for `100 Continue` has sent nothing yet (reading would invite it to); a body
        # announced as larger than the bound is not worth reading.
        expects_continue = (header(scope, b"expect") or b"").lower() == b"100-continue"
        too_long = length is not None and length.isdigit() and int(length) > drain_bytes
        if has_body and not (body_read or expects_continue or too_long):
            await drain(receive, drain_bytes)
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    response = JSONResponse(status_code=status_code, content={"message": message, "detail": message}, headers=headers)
    await response(scope, receive, send)


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
