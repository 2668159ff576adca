"""Request bodies as strict JSON, checked before the app runs.

Python's json module (which FastAPI parses bodies with) accepts NaN and Infinity, lone surrogates, integers
of any length (and fails past 4,300 digits) and nests until RecursionError: each became a 500, or a row stored
that could not be read back. This middleware parses every JSON body with orjson first (`loads_strict`) and
answers 400 (not JSON) or 422 (JSON, but not storable: numbers out of range, nested too deep), naming where.
Pure ASGI: one orjson parse of an already bounded body (BodySizeLimit runs outside it), no task per request.

Bodies that declare another content type (JSONL task files, forms) pass through, as do bodies of paths
listed in `raw_paths` (those read the raw body and check it themselves, even when no content type is sent).
"""

from __future__ import annotations

from collections.abc import Collection

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from llm_feedback_loop.api.guards.asgi import no_receive, read_body, replay
from llm_feedback_loop.api.security import SAFE_METHODS
from llm_feedback_loop.storage.json_values import MAX_DOCUMENT_DEPTH, JSONValueError, describe_path, loads_strict

# Endpoints of the feedback service whose body is not one JSON document (`POST /v1/tasks/import`: JSONL).
RAW_BODY_PATHS = frozenset({"/v1/tasks/import"})


def is_json_content_type(value: bytes | None) -> bool:
    """application/json, application/*+json, or no content type at all (FastAPI parses those as JSON)."""
    if not value:
        return True
    media_type = value.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


class StrictJSONBody:
    """Refuses request bodies that are not strict JSON (400) or not storable JSON (422) before the app sees them.

    `max_depth`: deepest nesting of a body (free fields inside it are held to 32 by the schemas).
    `raw_paths`: paths whose bodies pass through unchecked (they are not JSON documents).
    """

    def __init__(
        self, app: ASGIApp, max_depth: int = MAX_DOCUMENT_DEPTH, raw_paths: Collection[str] = RAW_BODY_PATHS
    ) -> None:
        self.app = app
        self.max_depth = max_depth
        self.raw_paths = frozenset(raw_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS or scope["path"] in self.raw_paths:
            await self.app(scope, receive, send)
            return
        content_type = next((value for name, value in scope.get("headers", ()) if name == b"content-type"), None)
        if not is_json_content_type(content_type):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if not isinstance(body, bytes):  # the client left: let the app see it
            await self.app(scope, replay([], body, receive), send)
            return
        if body.strip():
            try:
                loads_strict(body, self.max_depth)
            except JSONValueError as error:
                await _refuse(error, scope, send)
                return
        await self.app(scope, replay([body], None, receive), send)


async def _refuse(error: JSONValueError, scope: Scope, send: Send) -> None:
    where = f" at {describe_path(error.path)}" if error.path else ""
    if error.message.startswith("not valid JSON"):
        status, message = 400, f"Request body is {error.message}{where}"
    else:
        status, message = 422, f"Request body{where}: {error.message}"
    response = JSONResponse(status_code=status, content={"message": message, "detail": message})
    await response(scope, no_receive, send)
