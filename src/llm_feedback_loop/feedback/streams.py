"""Feedback read in prompt order, one `PromptGroup` at a time: what every export consumes.

Each feedback table is read with a server-side cursor ordered by (prompt_hash, id), in batches, and the
three streams are merged prompt by prompt, so memory holds one batch and one prompt's feedback at a time
whatever the table sizes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from sqlalchemy import Text, cast, select
from sqlalchemy.ext.asyncio import AsyncEngine

from llm_feedback_loop.feedback.filters import FeedbackFilter
from llm_feedback_loop.feedback.records import ComparisonRecord, CorrectionRecord, PromptGroup, RatingRecord
from llm_feedback_loop.storage.tables import Comparison, Correction, FeedbackRowMixin, Generation, Rating, Task

STREAM_BATCH = 5000
# Columns every stream starts with: prompt_hash, prompt, prompt_messages (raw JSON text), id.
HASH, PROMPT, MESSAGES, ID = range(4)


async def _groups_of(
    engine: AsyncEngine, table: type[FeedbackRowMixin] | type[Task], columns: list[Any], where: FeedbackFilter
) -> AsyncIterator[tuple[str, list[Sequence[Any]]]]:
    """(prompt_hash, rows) for each prompt with rows in `table`, in prompt_hash order."""
    # The messages stay raw text here and are decoded once per prompt, not once per row.
    raw_messages = cast(table.prompt_messages, Text)
    statement = select(table.prompt_hash, table.prompt, raw_messages, table.id, *columns)
    statement = where.apply(statement, table).order_by(table.prompt_hash, table.id)
    async with engine.connect() as connection:
        result = await connection.stream(statement.execution_options(yield_per=STREAM_BATCH))
        current: str | None = None
        rows: list[Sequence[Any]] = []
        async for partition in result.partitions():
            for row in partition:
                if row[HASH] != current:
                    if rows:
                        yield current, rows  # type: ignore[misc]
                    current, rows = row[HASH], []
                rows.append(row)
        if rows:
            yield current, rows  # type: ignore[misc]


async def iter_prompt_groups(
    engine: AsyncEngine, where: FeedbackFilter, *, with_generations: bool = False
) -> AsyncIterator[PromptGroup]:
    """Every prompt with feedback matching `where`, in prompt_hash order, with all its feedback. With
    `with_generations`, also every prompt answers were logged for (what people asked, rated or not) and every
    prompt of the annotation queue (a task, judged or not)."""
    streams = {
        "rating": _groups_of(engine, Rating, [Rating.response, Rating.rating], where),
        "comparison": _groups_of(
            engine, Comparison, [Comparison.responses, Comparison.ranking, Comparison.best_index], where
        ),
        "correction": _groups_of(
            engine, Correction, [Correction.original_response, Correction.corrected_response], where
        ),
    }
    if with_generations:
        streams["generation"] = _groups_of(engine, Generation, [], where)
        if where.annotator is None and where.model is None:  # a task has neither: it is nobody's yet
            streams["task"] = _groups_of(engine, Task, [], where)
    heads: dict[str, tuple[str, list[Sequence[Any]]] | None] = {}
    for name, stream in streams.items():
        heads[name] = await anext(stream, None)
    try:
        while True:
            present = [head for head in heads.values() if head is not None]
            if not present:
                return
            current = min(prompt_hash for prompt_hash, _ in present)
            group: PromptGroup | None = None
            for name, stream in streams.items():
                head = heads[name]
                if head is None or head[0] != current:
                    continue
                rows = head[1]
                if group is None:
                    first = rows[0]
                    group = PromptGroup(current, first[PROMPT], orjson.loads(first[MESSAGES]))
                _add_rows(group, name, rows)
                heads[name] = await anext(stream, None)
            assert group is not None
            yield group
    finally:
        for stream in streams.values():
            await stream.aclose()  # type: ignore[attr-defined]


def _add_rows(group: PromptGroup, kind: str, rows: list[Sequence[Any]]) -> None:
    first = ID + 1
    if kind == "rating":
        group.ratings.extend(RatingRecord(row[ID], row[first], row[first + 1]) for row in rows)
    elif kind == "comparison":
        group.comparisons.extend(
            ComparisonRecord(row[ID], [r["text"] for r in row[first]], row[first + 1], row[first + 2]) for row in rows
        )
    elif kind == "correction":
        group.corrections.extend(CorrectionRecord(row[ID], row[first], row[first + 1]) for row in rows)
    elif kind == "generation":
        group.generations.extend(row[ID] for row in rows)
