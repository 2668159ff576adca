"""`POST /v1/annotations`: what the annotate page submits, stored in one transaction.

A ranking becomes a comparison, each thumbs a rating, each edited answer a correction; all carry the
annotator, the comment, and the links to the logged generations.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from llm_feedback_loop.api import schemas
from llm_feedback_loop.api.deps import Annotator, SessionDep, StateDep
from llm_feedback_loop.api.feedback_rows import answer_access
from llm_feedback_loop.api.routes.feedback import check_answer_count
from llm_feedback_loop.api.security import as_user
from llm_feedback_loop.auth.accounts import Principal
from llm_feedback_loop.feedback.links import comparison_values, correction_values, rating_values
from llm_feedback_loop.feedback.payloads import describe_error
from llm_feedback_loop.storage.prompts import prompt_hash
from llm_feedback_loop.storage.tables import Comparison, Correction, Generation, Rating, Task, TaskAnnotation
from llm_feedback_loop.tasks.queue import judging

router = APIRouter(prefix="/v1", tags=["feedback"])


def prompt_fields(body: schemas.AnnotationCreate) -> dict[str, Any]:
    shared: dict[str, Any] = {"annotator": body.annotator, "metadata": body.metadata}
    if body.messages:
        return shared | {"messages": [m.model_dump() for m in body.messages]}
    return shared | {"prompt": body.prompt}


def parts(body: schemas.AnnotationCreate) -> tuple[Any, list[Any], list[Any]]:
    """The comparison (or None), ratings and corrections one annotation stands for."""
    base = prompt_fields(body)
    if body.task_id is not None:
        base["metadata"] = (body.metadata or {}) | {"task_id": body.task_id}
    comparison = None
    if body.ranking is not None:
        comparison = schemas.ComparisonCreate(
            **base,
            comment=body.comment,
            responses=[
                {"id": str(index), "text": answer.text, "generation_id": answer.generation_id}
                for index, answer in enumerate(body.answers)
            ],
            ranking=body.ranking,
        )
    ratings = [
        schemas.RatingCreate(**base, response=a.text, generation_id=a.generation_id, rating=a.rating)
        for a in body.answers
        if a.rating
    ]
    corrections = [
        schemas.CorrectionCreate(
            **base,
            comment=body.comment,
            original_response=a.text,
            generation_id=a.generation_id,
            corrected_response=a.corrected,
        )
        for a in body.answers
        if a.corrected and a.corrected.strip() and a.corrected != a.text
    ]
    return comparison, ratings, corrections


@router.post("/annotations", status_code=201)
async def create_annotation(
    body: schemas.AnnotationCreate, session: SessionDep, state: StateDep, user: Annotator
) -> dict[str, Any]:
    """Store a ranking, thumbs and edits of one prompt's answers together (all or nothing). Of concurrent
    judgements of one task by one annotator, one is stored (201) and the others get 409."""
    body = as_user(body, user, required="who judged these answers")
    check_answer_count(state, len(body.answers), "answers")
    try:
        comparison, ratings, corrections = parts(body)
    except ValidationError as error:
        raise HTTPException(status_code=422, detail="; ".join(describe_error(e) for e in error.errors())) from None
    if body.task_id is None:
        return await store_annotation(session, body, None, comparison, ratings, corrections, user)
    # One judgement of a task at a time in this process (and the task's row locked, on PostgreSQL, across
    # processes): the second of two concurrent ones then sees the first and gets its 409.
    async with judging(body.task_id):
        task = await check_task(session, body)
        return await store_annotation(session, body, task, comparison, ratings, corrections, user)


async def store_annotation(
    session: SessionDep,
    body: schemas.AnnotationCreate,
    task: Task | None,
    comparison: Any,
    ratings: list[Any],
    corrections: list[Any],
    user: Principal,
) -> dict[str, Any]:
    """Insert the annotation's rows (and its task judgement) in one transaction. The answers named by
    generation_id must be the caller's to read: logged for them, or the answers of the task they judge."""
    await check_generations(session, body)
    task_answers = (
        frozenset(a["generation_id"] for a in (task.answers or []) if a.get("generation_id")) if task else frozenset()
    )
    access = answer_access(user, task_answers)
    rows: list[tuple[Any, dict[str, Any]]] = []
    if comparison is not None:
        rows.append((Comparison, await comparison_values(session, comparison, access)))
    rows += [(Rating, await rating_values(session, rating, access)) for rating in ratings]
    rows += [(Correction, await correction_values(session, correction, access)) for correction in corrections]
    created: dict[str, Any] = {"comparison_id": None, "rating_ids": [], "correction_ids": []}
    try:
        for table, values in rows:
            row_id = (await session.execute(insert(table).values(values).returning(table.id))).scalar_one()
            if table is Comparison:
                created["comparison_id"] = row_id
            else:
                created["rating_ids" if table is Rating else "correction_ids"].append(row_id)
        if task is not None:
            session.add(
                TaskAnnotation(
                    task_id=task.id,
                    annotator=body.annotator,
                    comparison_id=created["comparison_id"],
                    ranking=body.ranking,
                )
            )
            await session.flush()
    except IntegrityError:
        # Another process stored this annotator's judgement of the task first (the unique constraint).
        await session.rollback()
        raise HTTPException(
            status_code=409, detail=f"task_id: {body.annotator} has judged task {body.task_id}"
        ) from None
    await session.commit()
    return {"message": "Annotation saved", **created}


async def check_task(session: SessionDep, body: schemas.AnnotationCreate) -> Task | None:
    """The queue task the annotation is for: it must exist, its conversation and answers must be the ones
    judged, in its order, and they must be ranked (a judgement of a task is a ranking)."""
    if body.task_id is None:
        return None
    task = await session.get(Task, body.task_id, with_for_update=True)  # FOR UPDATE on PostgreSQL
    if task is None:
        raise HTTPException(status_code=404, detail=f"task_id: no task {body.task_id}")
    if body.prompt_messages() != task.prompt_messages:
        raise HTTPException(status_code=422, detail=f"messages: not the conversation of task {task.id}")
    expected = task.answers or []
    same = len(expected) == len(body.answers) and all(
        given.generation_id == wanted.get("generation_id")
        if wanted.get("generation_id")
        else (given.text == wanted.get("text") and given.generation_id is None)
        for given, wanted in zip(body.answers, expected, strict=False)
    )
    if not same:
        raise HTTPException(status_code=422, detail=f"answers: not the answers of task {task.id}, in its order")
    if body.ranking is None:
        raise HTTPException(status_code=422, detail="ranking: a task is judged by ranking its answers")
    judgements = list(await session.scalars(select(TaskAnnotation.annotator).where(TaskAnnotation.task_id == task.id)))
    if body.annotator in judgements:
        raise HTTPException(status_code=409, detail=f"task_id: {body.annotator} has judged task {task.id}")
    if len(judgements) >= task.required:
        raise HTTPException(
            status_code=409,
            detail=f"task_id: task {task.id} has its {task.required} judgement(s) already; "
            "GET /v1/tasks/next gives a task that still needs one",
        )
    return task


async def check_generations(session: SessionDep, body: schemas.AnnotationCreate) -> None:
    """Answers given by generation_id must be answers to this very conversation."""
    ids = {answer.generation_id for answer in body.answers if answer.generation_id is not None}
    if not ids:
        return
    wanted = prompt_hash(body.prompt_messages())
    for generation in await session.scalars(select(Generation).where(Generation.id.in_(ids))):
        if generation.prompt_hash != wanted:
            raise HTTPException(
                status_code=422, detail=f"answers: generation {generation.id} answers another conversation"
            )
