"""Chat: the original `POST /chat` and `POST /v1/chat`. Every answer shown is stored as a generation
with the model version that produced it; feedback then names it by `generation_id`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from llm_feedback_loop.api.deps import Chatter, StateDep
from llm_feedback_loop.api.schemas import CleanText, NonEmptyText, PromptIn
from llm_feedback_loop.api.security import annotator_name, as_user
from llm_feedback_loop.chat.providers import Candidate, ChatOutcome, LocalProvider, ProviderError
from llm_feedback_loop.feedback.rows import common_values
from llm_feedback_loop.logging_redaction import redact
from llm_feedback_loop.models.loader import ModelLoadError
from llm_feedback_loop.serving.engine import BadPrompt, SamplingParams
from llm_feedback_loop.serving.openai_schemas import MAX_STOP_CHARS, MAX_STOPS, Seed
from llm_feedback_loop.serving.slot import Lease
from llm_feedback_loop.storage.tables import Generation

router = APIRouter(tags=["chat"])


class LegacyChatIn(BaseModel):
    prompt: NonEmptyText


class ChatIn(PromptIn):
    model_config = ConfigDict(extra="forbid")

    n: Annotated[int, Field(ge=1, le=4, description="Candidate answers to generate.")] = 1
    max_tokens: Annotated[int, Field(ge=1, le=4096)] = 256
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.8
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    stop: list[Annotated[CleanText, Field(min_length=1, max_length=MAX_STOP_CHARS)]] | None = Field(
        default=None, max_length=MAX_STOPS
    )
    seed: Seed | None = None
    provider: Literal["local", "remote"] | None = None
    annotator: CleanText | None = Field(default=None, max_length=200)


async def answer(
    state: StateDep,
    provider: str | None,
    messages: list[dict[str, str]],
    n: int,
    params: SamplingParams,
    annotator: str | None = None,
) -> tuple[ChatOutcome, list[int]]:
    """Ask the provider for n answers and store each as a generation; returns them with their ids."""
    chosen = state.chat.provider(provider)
    try:
        outcome = await chosen.chat(messages, n, params)
    except ProviderError as error:
        raise HTTPException(status_code=error.status, detail=str(error)) from None
    except BadPrompt as error:
        raise HTTPException(status_code=400, detail=str(error)) from None
    except ModelLoadError as error:
        raise HTTPException(status_code=503, detail=str(error)) from None
    parameters = sampling_record(chosen.name, params)
    ids = []
    for candidate in outcome.candidates:
        # PostgreSQL cannot store NUL; a model can emit one. Shown and stored the same: as U+FFFD.
        candidate.text = candidate.text.replace("\x00", "\ufffd")
        ids.append(await log_generation(state, messages, annotator, candidate, parameters))
    return outcome, ids


def sampling_record(provider: str, params: SamplingParams) -> dict[str, Any]:
    return {
        "provider": provider,
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stop": params.stop or None,
        "seed": params.seed,
    }


async def log_generation(
    state: StateDep, messages: list[dict[str, str]], annotator: str | None, candidate: Candidate, parameters: dict
) -> int:
    """Store an answer shown to someone, with the model version that wrote it; returns its generation id."""
    values = common_values(messages, annotator, None) | {
        "response": candidate.text,
        "model": candidate.model,
        "model_version": candidate.model_version,
        "parameters": parameters | {"finish_reason": candidate.finish_reason},
    }
    return await state.writer.insert(Generation, values)


@router.post("/chat")
async def chat(
    body: LegacyChatIn,
    state: StateDep,
    provider: Annotated[str | None, Query(description="local, or a remote provider (e.g. openrouter).")] = None,
    count: Annotated[int, Query(ge=1, le=3, description="Answers to sample (remote providers).")] = 1,
    *,
    user: Chatter,
) -> dict[str, Any]:
    """The original chat: `provider=local` → {"response"}; otherwise `count` answers → {"responses"}."""
    messages = [{"role": "user", "content": body.prompt}]
    params = SamplingParams(max_tokens=256, temperature=0.8, top_p=0.95)
    if provider == "local":
        outcome, ids = await answer(state, "local", messages, 1, params, user.name)
        return {"response": outcome.candidates[0].text, "generation_id": ids[0]}
    outcome, ids = await answer(state, provider, messages, count, params, user.name)
    return {
        "responses": [c.text for c in outcome.candidates],
        "generation_ids": ids,
        "failed": len(outcome.errors),
    }


@router.post("/v1/chat")
async def chat_v1(body: ChatIn, state: StateDep, user: Chatter) -> dict[str, Any]:
    """A conversation (or prompt) → n candidate answers, each with its generation id and model version."""
    params = SamplingParams(body.max_tokens, body.temperature, body.top_p, list(body.stop or []), body.seed)
    annotator = annotator_name(user, body.annotator)
    outcome, ids = await answer(state, body.provider, body.prompt_messages(), body.n, params, annotator)
    return {
        "candidates": [
            {
                "generation_id": generation_id,
                "text": candidate.text,
                "model": candidate.model,
                "model_version": candidate.model_version,
                "finish_reason": candidate.finish_reason,
            }
            for generation_id, candidate in zip(ids, outcome.candidates, strict=True)
        ],
        "failed": len(outcome.errors),
        "errors": outcome.errors,
    }


async def prompt_ids(lease: Lease, messages: list[dict[str, str]], max_tokens: int) -> list[int]:
    """The prompt's token ids for the leased model, checked against its context (a 400); a request refused
    here releases its lease."""
    try:
        input_ids = await lease.served.engine.encode_chat_async(messages)
        lease.served.engine.check_fits(input_ids, max_tokens)
    except BaseException as error:
        lease.release()
        if isinstance(error, BadPrompt):
            raise HTTPException(status_code=400, detail=str(error)) from None
        raise
    return input_ids


@router.post("/v1/chat/stream")
async def chat_stream(body: ChatIn, state: StateDep, user: Chatter) -> StreamingResponse:
    """`/v1/chat` as it is generated: JSON lines `{"index", "delta"}` while the n answers are written
    (interleaved), then per answer `{"index", "done": true, "generation_id", "model_version",
    "finish_reason"}` once it is stored (or `{"index", "error"}`). A remote provider's answers come whole."""
    params = SamplingParams(body.max_tokens, body.temperature, body.top_p, list(body.stop or []), body.seed)
    messages = body.prompt_messages()
    body = as_user(body, user)
    provider = state.chat.provider(body.provider)
    if not isinstance(provider, LocalProvider):
        outcome, ids = await answer(state, body.provider, messages, body.n, params, body.annotator)
        events = [
            line
            for index, (candidate, generation_id) in enumerate(zip(outcome.candidates, ids, strict=True))
            for line in (
                {"index": index, "delta": candidate.text},
                {
                    "index": index,
                    "done": True,
                    "generation_id": generation_id,
                    "model_version": candidate.model_version,
                    "finish_reason": candidate.finish_reason,
                },
            )
        ]

        async def whole() -> AsyncIterator[bytes]:
            for event in events:
                yield orjson.dumps(event) + b"\n"

        return StreamingResponse(whole(), media_type="application/x-ndjson")
    try:
        lease = await provider.lease()  # released when the response's stream ends (or is dropped unstarted)
    except ModelLoadError as error:
        raise HTTPException(status_code=503, detail=str(error)) from None
    served = lease.served
    input_ids = await prompt_ids(lease, messages, params.max_tokens)
    parameters = sampling_record(provider.name, params)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def write(index: int) -> None:
        parts, finish = [], "length"
        try:
            async for delta in served.engine.stream(input_ids, params.for_choice(index)):
                text = delta.text.replace("\x00", "\ufffd")
                if text:
                    parts.append(text)
                    await queue.put({"index": index, "delta": text})
                finish = delta.finish_reason or finish
            candidate = Candidate("".join(parts), served.source, served.name, finish)
            generation_id = await log_generation(state, messages, body.annotator, candidate, parameters)
            await queue.put(
                {
                    "index": index,
                    "done": True,
                    "generation_id": generation_id,
                    "model_version": served.name,
                    "finish_reason": finish,
                }
            )
        except Exception as error:  # one answer failing must not end the others
            await queue.put({"index": index, "error": f"generation failed: {redact(str(error))}"})

    async def events(held: Lease) -> AsyncIterator[bytes]:
        writers = [asyncio.create_task(write(index)) for index in range(body.n)]
        try:
            remaining = body.n
            while remaining:
                event = await queue.get()
                if "done" in event or "error" in event:
                    remaining -= 1
                yield orjson.dumps(event) + b"\n"
        finally:
            await asyncio.gather(*writers, return_exceptions=True)
            held.release()

    return StreamingResponse(events(lease), media_type="application/x-ndjson")
