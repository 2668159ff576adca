"""Loading tasks, handing the next one to an annotator, recording who judged what, and progress."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.storage.tables import Generation, Task, TaskAnnotation
from llm_feedback_loop.tasks.agreement import task_agreement
from llm_feedback_loop.training_data.records import prompt_hash

MAX_TASKS_PER_LOAD = 10_000
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
            row = json.loads(line)
        except json.JSONDecodeError as error:
            errors.append(f"line {number}: not valid JSON ({error.msg})")
            continue
        if not isinstance(row, dict):
            errors.append(f"line {number}: expected a JSON object")
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
        tasks.append({"messages": messages, "answers": answers, "metadata": row.get("metadata")})
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


async def progress(session: AsyncSession, batch: str | None = None, limit: int = 200) -> dict[str, Any]:
    tasks_query = select(Task).order_by(Task.id)
    if batch is not None:
        tasks_query = tasks_query.where(Task.batch == batch)
    tasks = list(await session.scalars(tasks_query))
    by_task: dict[int, list[TaskAnnotation]] = {}
    for annotation in await session.scalars(select(TaskAnnotation)):
        by_task.setdefault(annotation.task_id, []).append(annotation)
    per_task, agreements = [], []
    for task in tasks:
        judged = by_task.get(task.id, [])
        agreement = task_agreement([a.ranking for a in judged if a.ranking])
        if agreement is not None:
            agreements.append(agreement)
        per_task.append(
            {
                "id": task.id,
                "prompt": task.prompt,
                "done": len(judged),
                "required": task.required,
                "agreement": agreement,
            }
        )
    return {
        "tasks": len(tasks),
        "complete": sum(1 for item in per_task if item["done"] >= item["required"]),
        "annotations_done": sum(min(item["done"], item["required"]) for item in per_task),
        "annotations_needed": sum(item["required"] for item in per_task),
        "agreement": sum(agreements) / len(agreements) if agreements else None,
        "tasks_with_agreement": len(agreements),
        "per_task": per_task[:limit],
    }
