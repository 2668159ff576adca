"""The inference server, `llmfl serve-model`: OpenAI-compatible endpoints and the original `/generate`.

GET  /v1/models                  the served model
POST /v1/chat/completions        messages → n answers; `stream: true` for server-sent events
POST /v1/completions             plain text continuation, same options
POST /generate                   the original: {"prompt", "max_tokens"} → {"response"}
POST /admin/reload               serve the active version (or the registered version named) from now on
GET  /health                     public: whether the model is loaded

Every route but /health needs an API key of the feedback service's database (`Authorization: Bearer llmfl_...`,
what the `openai` SDK's `api_key=` sends): generation the chat permission (annotator, admin), the model list
any role, a reload the admin role.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse

from llm_feedback_loop.api.deps import require_admin, require_chat, require_signed_in
from llm_feedback_loop.api.errors import install_error_handlers
from llm_feedback_loop.api.guards import install_http_guards
from llm_feedback_loop.api.guards.strict_json import StrictJSONBody
from llm_feedback_loop.api.security import Authenticator
from llm_feedback_loop.logging_redaction import install_log_redaction
from llm_feedback_loop.models.loader import ModelLoadError
from llm_feedback_loop.serving.engine import BadPrompt, Completion, GenerationError, SamplingParams
from llm_feedback_loop.serving.openai_schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    GenerateRequest,
    ReloadRequest,
)
from llm_feedback_loop.serving.slot import Lease, ModelSlot, ServedModel, UnknownVersion
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.database import open_database

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 256
# The original server's sampling: temperature 0.8, top_p 0.95.
ORIGINAL_SAMPLING = {"temperature": 0.8, "top_p": 0.95}


def create_serving_app(
    settings: Settings,
    model: str | None = None,
    watch_registry_s: float = 0.0,
    device: str = "auto",
    preloaded: ServedModel | None = None,
    engine: str = "transformers",
) -> FastAPI:
    """The app; `model` is a version, hub id or folder (default: the registry's active version): the operator's
    choice at start, the one time a folder or hub id is taken. `preloaded`: the model already loaded (the CLI
    loads it first, to report a bad model plainly)."""
    install_log_redaction()
    app = FastAPI(
        title="llm-feedback-loop inference server",
        lifespan=serving_lifespan(settings, model, watch_registry_s, device, preloaded, engine),
    )
    install_error_handlers(app)
    app.add_exception_handler(BadPrompt, bad_prompt)
    app.add_exception_handler(GenerationError, generation_failed)
    app.add_middleware(StrictJSONBody)  # the same order as the feedback service (api/app.py)
    install_http_guards(app, settings)
    add_routes(app)
    return app


def add_routes(app: FastAPI) -> None:
    """The endpoints, on the app itself: each states who may call it (tests/api/test_model_server_access.py)."""
    app.add_api_route("/health", health, methods=["GET"])
    app.add_api_route("/v1/models", list_models, methods=["GET"], dependencies=[Depends(require_signed_in)])
    app.add_api_route("/admin/reload", reload, methods=["POST"], dependencies=[Depends(require_admin)])
    app.add_api_route("/generate", generate, methods=["POST"], dependencies=[Depends(require_chat)])
    for path, endpoint in (("/v1/chat/completions", chat_completions), ("/v1/completions", completions)):
        app.add_api_route(path, endpoint, methods=["POST"], response_model=None, dependencies=[Depends(require_chat)])


def serving_lifespan(
    settings: Settings,
    model: str | None,
    watch_registry_s: float,
    device: str,
    preloaded: ServedModel | None,
    engine: str = "transformers",
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Open the database (the same users and keys as the feedback service), load the model (unless
    `preloaded`), watch the registry for a newly activated version; undo it all on exit."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = await open_database(settings.database_url)
        try:
            app.state.auth = Authenticator(database.sessions, required=settings.auth_required)
            slot = ModelSlot(
                database.engine,
                settings.base_model,
                device=device,
                current=preloaded,
                engine=engine,
                pack_linear=settings.model_packed_linear,
            )
            app.state.slot = slot
            if preloaded is None:
                await (slot.switch(model, registered_only=False) if model else slot.current())
            watching = watch_registry_s > 0 and not model
            watcher = asyncio.create_task(_watch(slot, watch_registry_s)) if watching else None
            try:
                yield
            finally:
                if watcher is not None:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher
                await slot.close()
        finally:
            await database.close()

    return lifespan


async def bad_prompt(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=400, content={"message": str(exc), "detail": str(exc)})


async def generation_failed(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=500, content={"message": f"generation failed: {exc}"})


def slot_of(request: Request) -> ModelSlot:
    return request.app.state.slot


async def served(request: Request, asked: str | None) -> Lease:
    """The served model, held for this request (serving/slot.py); a 404 when the request names another."""
    lease = await slot_of(request).lease()
    current = lease.served
    if asked and asked not in (current.name, current.source):
        lease.release()
        raise HTTPException(
            status_code=404,
            detail=f"model {asked!r} is not served here; this server serves {current.name!r} (GET /v1/models)",
        )
    return lease


async def health(request: Request) -> dict[str, Any]:
    current = slot_of(request).loaded
    return {"status": "ok" if current else "loading", "model": current.name if current else None}


async def list_models(request: Request) -> dict[str, Any]:
    current = await slot_of(request).current()
    return {
        "object": "list",
        "data": [{"id": current.name, "object": "model", "created": 0, "owned_by": "llm-feedback-loop"}],
    }


async def reload(request: Request, body: ReloadRequest | None = None) -> dict[str, Any]:
    """Serve the registry's active version (or the registered version `model`) from now on; requests in
    flight finish first."""
    try:
        current = await slot_of(request).switch(body.model if body else None)
    except UnknownVersion as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    except ModelLoadError as error:  # a registered version whose files are gone: the old model stays
        raise HTTPException(status_code=409, detail=f"model: {error}; still serving the previous one") from None
    return {"model": current.name, "version_id": current.version_id, "source": current.source}


async def generate(body: GenerateRequest, request: Request) -> dict[str, str]:
    with await served(request, None) as lease:
        engine = lease.served.engine
        params = SamplingParams(max_tokens=body.max_tokens, **ORIGINAL_SAMPLING)
        input_ids = await engine.encode_chat_async([{"role": "user", "content": body.prompt}])
        engine.check_fits(input_ids, params.max_tokens)
        result = await engine.complete(input_ids, params)
    return {"response": result.text}


async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    with await served(request, body.model) as lease:
        input_ids = await lease.served.engine.encode_chat_async([m.model_dump() for m in body.messages])
        return await _respond(lease, input_ids, body, "chat.completion")


async def completions(body: CompletionRequest, request: Request) -> Any:
    with await served(request, body.model) as lease:
        engine = lease.served.engine
        if isinstance(body.prompt, list) and body.prompt and isinstance(body.prompt[0], int):  # token ids
            input_ids = [int(token) for token in body.prompt]
            if max(input_ids) >= engine.vocab_size:
                detail = f"prompt: token ids must be below the vocabulary size {engine.vocab_size}"
                raise HTTPException(status_code=422, detail=detail)
            return await _respond(lease, input_ids, body, "text_completion")
        prompt = body.prompt if isinstance(body.prompt, str) else "".join(body.prompt)  # type: ignore[arg-type]
        input_ids = await engine.encode_text_async(prompt)
        if not input_ids:
            raise HTTPException(status_code=422, detail="prompt must not be empty")
        return await _respond(lease, input_ids, body, "text_completion")


async def _watch(slot: ModelSlot, every_s: float) -> None:
    """Switch to a newly activated version without a restart."""
    while True:
        await asyncio.sleep(every_s)
        try:
            if await slot.active_changed():
                await slot.switch(None)
        except Exception:  # a failed check must not end the watcher
            log.exception("watching the registry failed")


async def _respond(
    lease: Lease, input_ids: list[int], body: ChatCompletionRequest | CompletionRequest, kind: str
) -> Any:
    """The answer, whole or as a stream; a stream holds a lease of its own (`lease` ends with the route)."""
    current = lease.served
    params = body.sampling(DEFAULT_MAX_TOKENS)
    current.engine.check_fits(input_ids, params.max_tokens)  # a 400 before any stream starts
    request_id = f"{'chatcmpl' if kind == 'chat.completion' else 'cmpl'}-{uuid.uuid4().hex[:24]}"
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            _sse(lease.share(), input_ids, params, body.n, kind, request_id, include_usage),
            media_type="text/event-stream",
        )
    results: list[Completion] = await asyncio.gather(
        *(current.engine.complete(input_ids, params.for_choice(i)) for i in range(body.n))
    )
    choices = [
        {"index": i, "message": {"role": "assistant", "content": r.text}, "finish_reason": r.finish_reason}
        if kind == "chat.completion"
        else {"index": i, "text": r.text, "finish_reason": r.finish_reason, "logprobs": None}
        for i, r in enumerate(results)
    ]
    completion_tokens = sum(r.completion_tokens for r in results)
    return {
        "id": request_id,
        "object": kind,
        "created": int(time.time()),
        "model": current.name,
        "choices": choices,
        "usage": {
            "prompt_tokens": len(input_ids),
            "completion_tokens": completion_tokens,
            "total_tokens": len(input_ids) + completion_tokens,
        },
    }


async def _sse(
    lease: Lease,
    input_ids: list[int],
    params: SamplingParams,
    n: int,
    kind: str,
    request_id: str,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """Server-sent events: one chunk per piece of text of any choice, then usage if asked, then [DONE]; the
    lease is released at the end."""
    current = lease.served
    chunk_kind = "chat.completion.chunk" if kind == "chat.completion" else "text_completion"
    created = int(time.time())
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
    tokens = [0] * n

    async def run(index: int) -> None:
        try:
            async for delta in current.engine.stream(input_ids, params.for_choice(index)):
                await queue.put((index, delta))
        except Exception as error:  # reported in the stream: headers are already sent
            await queue.put((index, error))
        finally:
            await queue.put((index, None))

    def event(payload: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()

    def chunk(index: int, text: str | None, finish: str | None, first: bool = False) -> dict[str, Any]:
        if kind == "chat.completion":
            delta: dict[str, Any] = (
                {"role": "assistant", "content": text or ""} if first else ({"content": text} if text else {})
            )
            choice = {"index": index, "delta": delta, "finish_reason": finish}
        else:
            choice = {"index": index, "text": text or "", "finish_reason": finish, "logprobs": None}
        return {"id": request_id, "object": chunk_kind, "created": created, "model": current.name, "choices": [choice]}

    tasks = [asyncio.create_task(run(i)) for i in range(n)]
    try:
        if kind == "chat.completion":
            for index in range(n):
                yield event(chunk(index, "", None, first=True))
        running = n
        while running:
            index, item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, Exception):
                yield event({"error": {"message": f"generation failed: {item}", "type": "server_error"}})
            else:
                tokens[index] = item.completion_tokens
                if item.text or item.finish_reason:
                    yield event(chunk(index, item.text, item.finish_reason))
        if include_usage:
            usage = {
                "prompt_tokens": len(input_ids),
                "completion_tokens": sum(tokens),
                "total_tokens": len(input_ids) + sum(tokens),
            }
            yield event(
                {
                    "id": request_id,
                    "object": chunk_kind,
                    "created": created,
                    "model": current.name,
                    "choices": [],
                    "usage": usage,
                }
            )
        yield b"data: [DONE]\n\n"
    finally:
        for task in tasks:  # a client that disconnects cancels its generations
            task.cancel()
        lease.release()  # a cancelled generation is still counted in flight until its own cleanup has run
