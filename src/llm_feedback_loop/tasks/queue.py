"""Loading tasks, handing the next one to an annotator, recording who judged what, and progress."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.storage.json_values import MAX_FREE_DEPTH, JSONValueError, check_json_value, loads_strict
from llm_feedback_loop.storage.prompts import prompt_hash
from llm_feedback_loop.storage.tables import Generation, Task, TaskAnnotation
from llm_feedback_loop.tasks.agreement import task_agreement

MAX_TASKS_PER_LOAD = 10_000
MAX_TASK_DEPTH = MAX_FREE_DEPTH + 2  # a task line: {"metadata": {...32 levels...}}
ROLES = {"system", "user", "assistant"}


class TaskError(ValueError):
    """A task file or request that cannot be used; the message names the line or field."""


def valid_answer(answer: Any) -> bool:
    text, generation_id = answer.get("text"), answer.get("generation_id")
    return (
        isinstance(text, str)
        and bool(text.strip())
        and "\x00" not in text
        and set(answer) <= {"text", "generation_id"}
        and (generation_id is None or (type(generation_id) is int and 1 <= generation_id < 2**63))
    )


def parse_task_lines(text: str) -> list[dict[str, Any]]:
    """JSONL: {"prompt": "..."} or {"messages": [...]}, optionally "answers" (2-4): texts, or objects
    {"text", "generation_id"?} naming answers already logged as generations (as `llmfl loop` loads them)."""
    tasks, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            # Strict: no NaN, lone surrogates, integers past 64 bits or deep nesting (not a RecursionError).
            row = loads_strict(line, MAX_TASK_DEPTH, strings=True)
        except JSONValueError as error:
            errors.append(f"line {number}: {error}")
            continue
        if not isinstance(row, dict):
            errors.append(f"line {number}: expected a JSON object")
            continue
        metadata = row.get("metadata")
        if metadata is not None:
            try:
                if not isinstance(metadata, dict):
                    raise JSONValueError("must be a JSON object")
                check_json_value(metadata)
            except JSONValueError as error:
                errors.append(f"line {number}: metadata: {error}")
                continue
        messages = row.get("messages")
        prompt = row.get("prompt")
        if messages is None and isinstance(prompt, str) and prompt.strip():
            messages = [{"role": "user", "content": prompt}]
        valid_messages = (
            isinstance(messages, list)
            and messages
            and all(
                isinstance(m, dict)
                and m.get("role") in ROLES
                and isinstance(m.get("content"), str)
                and m["content"].strip()
                and "\x00" not in m["content"]
                for m in messages
            )
            and messages[-1].get("role") == "user"
        )
        if not valid_messages:
            errors.append(
                f'line {number}: needs "prompt" (text) or "messages" (roles system/user/assistant, non-empty text '
                "without NUL characters) ending with a user turn"
            )
            continue
        answers = row.get("answers")
        if answers is not None:
            answers = [a if isinstance(a, dict) else {"text": a} for a in answers] if isinstance(answers, list) else []
            if not 2 <= len(answers) <= 4 or not all(map(valid_answer, answers)):
                errors.append(
                    f'line {number}: "answers" must be 2 to 4 non-empty texts (or {{"text", "generation_id"}} objects)'
                )
                continue
        tasks.append({"messages": messages, "answers": answers, "metadata": metadata})
    if errors:
        raise TaskError(f"{len(errors)} bad line(s); nothing loaded: " + "; ".join(errors[:10]))
    if not tasks:
        raise TaskError("no tasks in the file")
    if len(tasks) > MAX_TASKS_PER_LOAD:
        raise TaskError(f"at most {MAX_TASKS_PER_LOAD} tasks per load, got {len(tasks)}")
    return tasks


async def check_logged_answers(session: AsyncSession, tasks: list[dict[str, Any]]) -> None:
    """Answers that name a generation must be that generation, logged for this very conversation."""
    wanted = {a["generation_id"] for task in tasks for a in task["answers"] or [] if a.get("generation_id")}
    if not wanted:
        return
    found = {g.id: g for g in await session.scalars(select(Generation).where(Generation.id.in_(wanted)))}
    errors = []
    for number, task in enumerate(tasks, start=1):
        for answer in task["answers"] or []:
            generation = found.get(answer.get("generation_id") or 0)
            if answer.get("generation_id") is None:
                continue
            if generation is None:
                errors.append(f"task {number}: no generation {answer['generation_id']}")
            elif generation.prompt_hash != prompt_hash(task["messages"]) or generation.response != answer["text"]:
                errors.append(f"task {number}: generation {generation.id} is another answer or conversation")
    if errors:
        raise TaskError(f"{len(errors)} bad answer(s); nothing loaded: " + "; ".join(errors[:10]))


async def load_tasks(session: AsyncSession, tasks: list[dict[str, Any]], required: int, batch: str | None) -> int:
    await check_logged_answers(session, tasks)
    for task in tasks:
        session.add(
            Task(
                batch=batch,
                prompt=task["messages"][-1]["content"],
                prompt_messages=task["messages"],
                prompt_hash=prompt_hash(task["messages"]),
                answers=task["answers"],
                required=required,
                extra=task.get("metadata"),
            )
        )
    await session.commit()
    return len(tasks)


def done_counts():
    return select(TaskAnnotation.task_id, func.count().label("done")).group_by(TaskAnnotation.task_id).subquery()


async def next_task(session: AsyncSession, annotator: str, batch: str | None = None) -> Task | None:
    """The oldest task (of `batch`, if given) that still needs annotators and that `annotator` has not judged."""
    done = done_counts()
    judged = select(TaskAnnotation.task_id).where(TaskAnnotation.annotator == annotator)
    statement = (
        select(Task)
        .outerjoin(done, done.c.task_id == Task.id)
        .where(func.coalesce(done.c.done, 0) < Task.required, Task.id.not_in(judged), Task.error.is_(None))
        .order_by(Task.id)
        .limit(1)
    )
    if batch is not None:
        statement = statement.where(Task.batch == batch)
    return await session.scalar(statement)


async def annotations_of(session: AsyncSession, task_id: int) -> list[TaskAnnotation]:
    return list(await session.scalars(select(TaskAnnotation).where(TaskAnnotation.task_id == task_id)))


_judging: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()


@asynccontextmanager
async def judging(task_id: int) -> AsyncIterator[None]:
    """Hold while a judgement of `task_id` is checked and stored: judgements of one task are taken one at a
    time in this process (SQLite has no row locks; PostgreSQL also locks the task's row)."""
    lock = _judging.get(task_id)
    if lock is None:
        lock = _judging[task_id] = asyncio.Lock()
    async with lock:
        yield


def _of_batch(statement: Any, batch: str | None) -> Any:
    return statement if batch is None else statement.where(Task.batch == batch)


async def progress(
    session: AsyncSession, batch: str | None = None, limit: int = 200, after_id: int = 0
) -> dict[str, Any]:
    """Counts over the whole queue (in SQL), the overall agreement, and one page of per-task progress: the
    `limit` tasks after task `after_id`. Memory holds one page and one task's rankings at a time."""
    done = done_counts()
    done_here = func.coalesce(done.c.done, 0)
    totals = (
        await session.execute(
            _of_batch(
                select(
                    func.count(Task.id),
                    func.coalesce(func.sum(case((done_here >= Task.required, 1), else_=0)), 0),
                    func.coalesce(func.sum(case((done_here < Task.required, done_here), else_=Task.required)), 0),
                    func.coalesce(func.sum(Task.required), 0),
                ).outerjoin(done, done.c.task_id == Task.id),
                batch,
            )
        )
    ).one()
    agreements = [agreement async for _, agreement in _task_agreements(session, batch)]
    page_query = (
        select(Task.id, Task.prompt, Task.required, done_here)
        .outerjoin(done, done.c.task_id == Task.id)
        .where(Task.id > after_id)
        .order_by(Task.id)
        .limit(limit)
    )
    page = list(await session.execute(_of_batch(page_query, batch)))
    rankings: dict[int, list[list[int]]] = {}
    if page:
        judged = select(TaskAnnotation.task_id, TaskAnnotation.ranking).where(
            TaskAnnotation.task_id.in_([row[0] for row in page])
        )
        for task_id, ranking in await session.execute(judged):
            if ranking:
                rankings.setdefault(task_id, []).append(ranking)
    per_task = [
        {
            "id": task_id,
            "prompt": prompt,
            "done": count,
            "required": required,
            "agreement": task_agreement(rankings.get(task_id, [])),
        }
        for task_id, prompt, required, count in page
    ]
    return {
        "tasks": totals[0],
        "complete": int(totals[1]),
        "annotations_done": int(totals[2]),
        "annotations_needed": int(totals[3]),
        "agreement": sum(agreements) / len(agreements) if agreements else None,
        "tasks_with_agreement": len(agreements),
        "per_task": per_task,
        # The next page of per_task: ?after_id=<this>; None when this page was the last.
        "next_after_id": per_task[-1]["id"] if len(per_task) == limit else None,
    }


async def _task_agreements(session: AsyncSession, batch: str | None) -> AsyncIterator[tuple[int, float]]:
    """(task id, agreement) of every task with two rankings or more, streamed one task at a time."""
    ranked = (
        select(TaskAnnotation.task_id)
        .where(TaskAnnotation.ranking.is_not(None))
        .group_by(TaskAnnotation.task_id)
        .having(func.count() >= 2)
    )
    statement = (
        select(TaskAnnotation.task_id, TaskAnnotation.ranking)
        .join(Task, Task.id == TaskAnnotation.task_id)
        .where(TaskAnnotation.task_id.in_(ranked))
        .order_by(TaskAnnotation.task_id, TaskAnnotation.id)
    )
    current: int | None = None
    rankings: list[list[int]] = []
    result = await session.stream(_of_batch(statement, batch).execution_options(yield_per=2000))
    async for task_id, ranking in result:
        if task_id != current:
            if current is not None and (agreement := task_agreement(rankings)) is not None:
                yield current, agreement
            current, rankings = task_id, []
        if ranking:
            rankings.append(ranking)
    if current is not None and (agreement := task_agreement(rankings)) is not None:
        yield current, agreement
