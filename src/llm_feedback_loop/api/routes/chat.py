"""Chat: the original `POST /chat` and `POST /v1/chat`. Every answer shown is stored as a generation
with the model version that produced it; feedback then names it by `generation_id`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from llm_feedback_loop.api.deps import StateDep
from llm_feedback_loop.api.feedback_rows import common_values
from llm_feedback_loop.api.schemas import CleanText, NonEmptyText, PromptIn
from llm_feedback_loop.chat.providers import ChatOutcome, ProviderError
from llm_feedback_loop.models.loader import ModelLoadError
from llm_feedback_loop.serving.engine import PromptTooLong, SamplingParams
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
    stop: list[CleanText] | None = Field(default=None, max_length=4)
    seed: int | None = None
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
    except PromptTooLong as error:
        raise HTTPException(status_code=400, detail=str(error)) from None
    except ModelLoadError as error:
        raise HTTPException(status_code=503, detail=str(error)) from None
    parameters = {
        "provider": chosen.name,
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stop": params.stop or None,
        "seed": params.seed,
    }
    ids = []
    for candidate in outcome.candidates:
        # PostgreSQL cannot store NUL; a model can emit one. Shown and stored the same: as U+FFFD.
        candidate.text = candidate.text.replace("\x00", "\ufffd")
        values = common_values(messages, annotator, None) | {
            "response": candidate.text,
            "model": candidate.model,
            "model_version": candidate.model_version,
            "parameters": parameters | {"finish_reason": candidate.finish_reason},
        }
        ids.append(await state.writer.insert(Generation, values))
    return outcome, ids


@router.post("/chat")
async def chat(
    body: LegacyChatIn,
    state: StateDep,
    provider: Annotated[str | None, Query(description="local, or a remote provider (e.g. openrouter).")] = None,
    count: Annotated[int, Query(ge=1, le=3, description="Answers to sample (remote providers).")] = 1,
) -> dict[str, Any]:
    """The original chat: `provider=local` → {"response"}; otherwise `count` answers → {"responses"}."""
    messages = [{"role": "user", "content": body.prompt}]
    params = SamplingParams(max_tokens=256, temperature=0.8, top_p=0.95)
    if provider == "local":
        outcome, ids = await answer(state, "local", messages, 1, params)
        return {"response": outcome.candidates[0].text, "generation_id": ids[0]}
    outcome, ids = await answer(state, provider, messages, count, params)
    return {
        "responses": [c.text for c in outcome.candidates],
        "generation_ids": ids,
        "failed": len(outcome.errors),
    }


@router.post("/v1/chat")
async def chat_v1(body: ChatIn, state: StateDep) -> dict[str, Any]:
    """A conversation (or prompt) → n candidate answers, each with its generation id and model version."""
    params = SamplingParams(body.max_tokens, body.temperature, body.top_p, list(body.stop or []), body.seed)
    outcome, ids = await answer(state, body.provider, body.prompt_messages(), body.n, params, body.annotator)
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
