"""Feedback read in prompt order, one `PromptGroup` at a time: what every export consumes.

Each feedback table is read with a server-side cursor ordered by (prompt_hash, id) and the three
streams are merged, so memory holds one prompt's feedback at a time whatever the table sizes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from llm_feedback_loop.storage.filters import FeedbackFilter
from llm_feedback_loop.storage.tables import Comparison, Correction, FeedbackRowMixin, Rating
from llm_feedback_loop.training_data.records import (
    ComparisonRecord,
    CorrectionRecord,
    PromptGroup,
    RatingRecord,
)

STREAM_BATCH = 5000


async def _rows_by_prompt(
    engine: AsyncEngine, table: type[FeedbackRowMixin], columns: list[Any], where: FeedbackFilter
) -> AsyncIterator[Any]:
    statement = select(table.prompt_hash, table.prompt, table.prompt_messages, table.id, *columns)
    statement = where.apply(statement, table).order_by(table.prompt_hash, table.id)
    async with engine.connect() as connection:
        result = await connection.stream(statement.execution_options(yield_per=STREAM_BATCH))
        async for row in result:
            yield row


async def iter_prompt_groups(engine: AsyncEngine, where: FeedbackFilter) -> AsyncIterator[PromptGroup]:
    """Every prompt with feedback matching `where`, in prompt_hash order, with all its feedback."""
    streams = {
        "rating": _rows_by_prompt(engine, Rating, [Rating.response, Rating.rating], where),
        "comparison": _rows_by_prompt(
            engine, Comparison, [Comparison.responses, Comparison.ranking, Comparison.best_index], where
        ),
        "correction": _rows_by_prompt(
            engine, Correction, [Correction.original_response, Correction.corrected_response], where
        ),
    }
    heads: dict[str, Any] = {}
    for name, stream in streams.items():
        heads[name] = await anext(stream, None)
    try:
        while any(head is not None for head in heads.values()):
            current = min(head.prompt_hash for head in heads.values() if head is not None)
            group: PromptGroup | None = None
            for name, stream in streams.items():
                row = heads[name]
                while row is not None and row.prompt_hash == current:
                    if group is None:
                        group = PromptGroup(row.prompt_hash, row.prompt, row.prompt_messages)
                    _add_to_group(group, name, row)
                    row = await anext(stream, None)
                heads[name] = row
            assert group is not None
            yield group
    finally:
        for stream in streams.values():
            await stream.aclose()  # type: ignore[attr-defined]


def _add_to_group(group: PromptGroup, kind: str, row: Any) -> None:
    if kind == "rating":
        group.ratings.append(RatingRecord(row.id, row.response, row.rating))
    elif kind == "comparison":
        texts = [response["text"] for response in row.responses]
        group.comparisons.append(ComparisonRecord(row.id, texts, row.ranking, row.best_index))
    else:
        group.corrections.append(CorrectionRecord(row.id, row.original_response, row.corrected_response))
