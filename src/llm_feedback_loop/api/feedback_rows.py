"""Validated payloads → row values for the writer, and rows → what the API returns.

Answers given by `generation_id` are filled in from the logged generation, so feedback links to the
exact answer and the model version that produced it.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.api import schemas
from llm_feedback_loop.auth.accounts import Principal
from llm_feedback_loop.auth.roles import Permission
from llm_feedback_loop.feedback import repository
from llm_feedback_loop.storage.prompts import prompt_hash, prompt_messages_from_text
from llm_feedback_loop.storage.tables import (
    Comparison,
    Correction,
    FeedbackRowMixin,
    Generation,
    Rating,
    utc_now,
)


def common_values(
    prompt_messages: list[dict[str, str]], annotator: str | None, metadata: dict[str, Any] | None
) -> dict[str, Any]:
    now = utc_now()
    return {
        "created_at": now,
        "updated_at": now,
        "annotator": annotator,
        "metadata": metadata,  # column names, not attribute names: the writer inserts with Core
        "prompt": prompt_messages[-1]["content"],
        "prompt_messages": prompt_messages,
        "prompt_hash": prompt_hash(prompt_messages),
    }


def legacy_rating_values(payload: schemas.LegacyRatingIn) -> dict[str, Any]:
    return common_values(prompt_messages_from_text(payload.prompt), payload.annotator, payload.metadata) | {
        "response": payload.response,
        "rating": payload.rating,
        "model": payload.model,
        "comment": payload.comment,
    }


def legacy_comparison_values(payload: schemas.LegacyComparisonIn) -> dict[str, Any]:
    responses = [{"id": None if r.id is None else str(r.id), "text": r.text} for r in payload.responses]
    return common_values(prompt_messages_from_text(payload.prompt), payload.annotator, payload.metadata) | {
        "responses": responses,
        "ranking": payload.ranking,
        "best_index": payload.bestIndex,
        "comment": payload.comment,
        "model": payload.model,
    }


async def resolve_generations(
    session: AsyncSession, ids: list[int | None], reader: Principal | None = None, allowed: frozenset[int] = frozenset()
) -> dict[int, Generation]:
    """The generations feedback names (422 for one that does not exist). With `reader`, one they may not
    read (an annotator: only answers logged for them, or the `allowed` answers of the task they judge) is
    answered as not existing: feedback must not become a way to read other people's answers by id."""
    wanted = {i for i in ids if i is not None}
    found = await repository.get_generations(session, wanted)
    if reader is not None and reader.user_id is not None and not reader.may(Permission.read):
        found = {i: g for i, g in found.items() if g.annotator == reader.name or i in allowed}
    missing = sorted(wanted - found.keys())
    if missing:
        raise HTTPException(
            status_code=422,
            detail=f"generation_id {', '.join(map(str, missing))} does not exist; log the answer with "
            "POST /v1/generations first, or send its text",
        )
    return found


async def linked_generation(
    session: AsyncSession, generation_id: int | None, reader: Principal | None, allowed: frozenset[int]
) -> Generation | None:
    """The generation a piece of feedback names, if it names one (422 if it does not exist)."""
    if generation_id is None:
        return None
    return (await resolve_generations(session, [generation_id], reader, allowed))[generation_id]


def answer_text(text: str | None, generation: Generation | None, field: str) -> str:
    """The answer's text: as given, or the generation's; both given must agree."""
    if generation is None:
        assert text is not None
        return text
    if text is not None and text != generation.response:
        raise HTTPException(
            status_code=422,
            detail=f"{field} differs from the text of generation {generation.id}; send one or the other",
        )
    return generation.response


async def rating_values(
    session: AsyncSession,
    payload: schemas.RatingCreate,
    reader: Principal | None = None,
    allowed: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    generation = await linked_generation(session, payload.generation_id, reader, allowed)
    return common_values(payload.prompt_messages(), payload.annotator, payload.metadata) | {
        "response": answer_text(payload.response, generation, "response"),
        "rating": payload.rating,
        "model": payload.model or (generation.model if generation else None),
        "comment": payload.comment,
        "generation_id": payload.generation_id,
    }


async def comparison_values(
    session: AsyncSession,
    payload: schemas.ComparisonCreate,
    reader: Principal | None = None,
    allowed: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    generations = await resolve_generations(session, [r.generation_id for r in payload.responses], reader, allowed)
    responses = []
    for index, response in enumerate(payload.responses):
        generation = generations.get(response.generation_id) if response.generation_id else None
        responses.append(
            {
                "id": str(response.id) if response.id is not None else str(index),
                "text": answer_text(response.text, generation, f"responses.{index}.text"),
                "generation_id": response.generation_id,
                "model": response.model or (generation.model if generation else None),
                "model_version": generation.model_version if generation else None,
            }
        )
    return common_values(payload.prompt_messages(), payload.annotator, payload.metadata) | {
        "responses": responses,
        "ranking": payload.ranking,
        "best_index": payload.best_index
        if payload.best_index is not None
        else (payload.ranking[0] if payload.ranking else None),
        "comment": payload.comment,
        "model": payload.model,
    }


async def correction_values(
    session: AsyncSession,
    payload: schemas.CorrectionCreate,
    reader: Principal | None = None,
    allowed: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    generation = await linked_generation(session, payload.generation_id, reader, allowed)
    return common_values(payload.prompt_messages(), payload.annotator, payload.metadata) | {
        "original_response": answer_text(payload.original_response, generation, "original_response"),
        "corrected_response": payload.corrected_response,
        "model": payload.model or (generation.model if generation else None),
        "comment": payload.comment,
        "generation_id": payload.generation_id,
    }


def generation_values(payload: schemas.GenerationCreate) -> dict[str, Any]:
    return common_values(payload.prompt_messages(), payload.annotator, payload.metadata) | {
        "response": payload.response,
        "model": payload.model,
        "model_version": payload.model_version,
        "parameters": payload.parameters,
    }


def row_from_values(table: type[FeedbackRowMixin], row_id: int, values: dict[str, Any]) -> FeedbackRowMixin:
    """The ORM object of a row just inserted from column `values` (the `metadata` column is `extra`)."""
    attributes = {("extra" if key == "metadata" else key): value for key, value in values.items()}
    return table(id=row_id, **attributes)


def public_common(row: FeedbackRowMixin) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "annotator": row.annotator,
        "metadata": row.extra,
        "prompt": row.prompt,
        "messages": row.prompt_messages,
    }


def to_public(row: FeedbackRowMixin) -> dict[str, Any]:
    """A stored row as the /v1 API returns it."""
    if isinstance(row, Rating):
        fields = ("response", "rating", "model", "comment", "generation_id")
        kind = "rating"
    elif isinstance(row, Comparison):
        fields = ("responses", "ranking", "best_index", "model", "comment")
        kind = "comparison"
    elif isinstance(row, Correction):
        fields = ("original_response", "corrected_response", "model", "comment", "generation_id")
        kind = "correction"
    else:
        fields = ("response", "model", "model_version", "parameters")
        kind = "generation"
    return public_common(row) | {"kind": kind} | {name: getattr(row, name) for name in fields}
