"""Feedback on logged answers: the answers a payload names by `generation_id` filled in from the generations.

Feedback then links to the exact answer and the model version that produced it. Who may name which answer is
the caller's to say (`AnswerAccess`; the API makes one from the signed-in user): feedback must not become a
way to read other people's answers by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.feedback import payloads, repository
from llm_feedback_loop.feedback.errors import FeedbackError
from llm_feedback_loop.feedback.rows import common_values
from llm_feedback_loop.storage.tables import Generation


@dataclass(frozen=True, slots=True)
class AnswerAccess:
    """The logged answers a caller may name: every one (`every`, as EVERY_ANSWER), or those logged for
    `annotator` and the `allowed` ones (the answers of the task they judge). It fails closed: without `every`,
    and without a name, only the `allowed` answers."""

    annotator: str | None = None
    allowed: frozenset[int] = frozenset()
    every: bool = False

    def may_name(self, generation: Generation) -> bool:
        if self.every or generation.id in self.allowed:
            return True
        return self.annotator is not None and generation.annotator == self.annotator


EVERY_ANSWER = AnswerAccess(every=True)


async def resolve_generations(
    session: AsyncSession, ids: list[int | None], access: AnswerAccess = EVERY_ANSWER
) -> dict[int, Generation]:
    """The generations feedback names; one that does not exist, or that `access` does not let the caller
    name (answered as not existing), is a FeedbackError (422)."""
    wanted = {i for i in ids if i is not None}
    found = await repository.get_generations(session, wanted)
    if not access.every:
        found = {i: g for i, g in found.items() if access.may_name(g)}
    missing = sorted(wanted - found.keys())
    if missing:
        raise FeedbackError(
            f"generation_id {', '.join(map(str, missing))} does not exist; log the answer with "
            "POST /v1/generations first, or send its text"
        )
    return found


async def linked_generation(
    session: AsyncSession, generation_id: int | None, access: AnswerAccess
) -> Generation | None:
    """The generation a piece of feedback names, if it names one (FeedbackError if it does not exist)."""
    if generation_id is None:
        return None
    return (await resolve_generations(session, [generation_id], access))[generation_id]


def answer_text(text: str | None, generation: Generation | None, field: str) -> str:
    """The answer's text: as given, or the generation's; both given must agree."""
    if generation is None:
        assert text is not None
        return text
    if text is not None and text != generation.response:
        raise FeedbackError(f"{field} differs from the text of generation {generation.id}; send one or the other")
    return generation.response


async def rating_values(
    session: AsyncSession, payload: payloads.RatingCreate, access: AnswerAccess = EVERY_ANSWER
) -> dict[str, Any]:
    generation = await linked_generation(session, payload.generation_id, access)
    return common_values(payload.prompt_messages(), payload.annotator, payload.metadata) | {
        "response": answer_text(payload.response, generation, "response"),
        "rating": payload.rating,
        "model": payload.model or (generation.model if generation else None),
        "comment": payload.comment,
        "generation_id": payload.generation_id,
    }


async def comparison_values(
    session: AsyncSession, payload: payloads.ComparisonCreate, access: AnswerAccess = EVERY_ANSWER
) -> dict[str, Any]:
    generations = await resolve_generations(session, [r.generation_id for r in payload.responses], access)
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
    session: AsyncSession, payload: payloads.CorrectionCreate, access: AnswerAccess = EVERY_ANSWER
) -> dict[str, Any]:
    generation = await linked_generation(session, payload.generation_id, access)
    return common_values(payload.prompt_messages(), payload.annotator, payload.metadata) | {
        "original_response": answer_text(payload.original_response, generation, "original_response"),
        "corrected_response": payload.corrected_response,
        "model": payload.model or (generation.model if generation else None),
        "comment": payload.comment,
        "generation_id": payload.generation_id,
    }
