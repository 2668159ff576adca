"""Feedback on logged answers: texts filled in from the generations, and a FeedbackError (no HTTP) for an answer
that does not exist, that the caller may not name, or whose text disagrees."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llm_feedback_loop.feedback.errors import FeedbackError
from llm_feedback_loop.feedback.links import EVERY_ANSWER, AnswerAccess, comparison_values, rating_values
from llm_feedback_loop.feedback.payloads import ComparisonCreate, GenerationCreate, RatingCreate
from llm_feedback_loop.feedback.rows import generation_values
from llm_feedback_loop.storage.engine import create_session_factory
from llm_feedback_loop.storage.tables import Generation
from tests.feedback.rows import migrated_writer


def with_generations(database_url: str, check: Any) -> Any:
    """Two logged answers to "q" (ids 1 by ana, 2 by bo), then `check(session)` on the database."""

    async def run() -> Any:
        async with migrated_writer(database_url) as (engine, writer):
            for annotator, text in (("ana", "first"), ("bo", "second")):
                payload = GenerationCreate(prompt="q", response=text, model="m", annotator=annotator)
                await writer.insert(Generation, generation_values(payload))
            async with create_session_factory(engine)() as session:
                return await check(session)

    return asyncio.run(run())


def test_answers_named_by_id_are_filled_in(database_url: str) -> None:
    comparison = ComparisonCreate(prompt="q", responses=[{"generation_id": 2}, {"generation_id": 1}], ranking=[1, 0])
    values = with_generations(database_url, lambda session: comparison_values(session, comparison))
    assert [(r["text"], r["model"]) for r in values["responses"]] == [("second", "m"), ("first", "m")]
    assert values["best_index"] == 1


@pytest.mark.parametrize(
    ("payload", "access", "message"),
    [
        ({"generation_id": 9}, AnswerAccess(), "generation_id 9 does not exist"),
        ({"generation_id": 2}, AnswerAccess(annotator="ana"), "generation_id 2 does not exist"),
        ({"generation_id": 1, "response": "other"}, EVERY_ANSWER, "response differs from the text of generation 1"),
    ],
)
def test_an_answer_that_cannot_be_named_is_a_feedback_error(
    database_url: str, payload: dict[str, Any], access: AnswerAccess, message: str
) -> None:
    rating = RatingCreate(prompt="q", rating="up", **payload)
    with pytest.raises(FeedbackError, match=message) as error:
        with_generations(database_url, lambda session: rating_values(session, rating, access))
    assert error.value.status_code == 422


def test_an_annotator_may_name_the_answers_of_the_task_they_judge(database_url: str) -> None:
    rating = RatingCreate(prompt="q", rating="up", generation_id=2)
    access = AnswerAccess(annotator="ana", allowed=frozenset({2}))
    values = with_generations(database_url, lambda session: rating_values(session, rating, access))
    assert values["response"] == "second" and values["generation_id"] == 2


def test_an_access_without_a_name_names_only_the_allowed_answers() -> None:
    """Fail closed: an AnswerAccess that is not EVERY_ANSWER and has no annotator grants nothing else."""
    from llm_feedback_loop.storage.tables import Generation

    theirs, allowed = Generation(id=1, annotator="bob"), Generation(id=2, annotator="bob")
    nameless = AnswerAccess(allowed=frozenset({2}))
    assert not nameless.may_name(theirs) and nameless.may_name(allowed)
    assert EVERY_ANSWER.may_name(theirs)
