"""Reads and deletes of feedback rows (inserts go through `writer.BatchedWriter`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from llm_feedback_loop.feedback.filters import FeedbackFilter
from llm_feedback_loop.storage.tables import FeedbackRowMixin, Generation

RowT = TypeVar("RowT", bound=FeedbackRowMixin)


async def get_row(session: AsyncSession, table: type[RowT], row_id: int) -> RowT | None:
    return await session.get(table, row_id)


async def get_generations(session: AsyncSession, ids: set[int]) -> dict[int, Generation]:
    if not ids:
        return {}
    rows = await session.scalars(select(Generation).where(Generation.id.in_(ids)))
    return {row.id: row for row in rows}


async def list_rows(
    session: AsyncSession,
    table: type[RowT],
    where: FeedbackFilter,
    limit: int,
    offset: int,
    extra_conditions: list[Any] | None = None,
) -> tuple[list[RowT], int]:
    """One page of rows, newest first, and the total number matching."""
    statement = where.apply(select(table), table)
    count_statement = where.apply(select(func.count()).select_from(table), table)
    for condition in extra_conditions or []:
        statement = statement.where(condition)
        count_statement = count_statement.where(condition)
    total = await session.scalar(count_statement) or 0
    rows = await session.scalars(
        statement.order_by(table.created_at.desc(), table.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), total


async def list_merged_rows(
    session: AsyncSession, tables: list[type[FeedbackRowMixin]], where: FeedbackFilter, limit: int, offset: int
) -> tuple[list[FeedbackRowMixin], int]:
    """One page of the rows of several tables merged newest first, and the total matching.

    Each table's newest offset+limit rows hold the page, but only their (created_at, id) keys are read to find
    it; the page's own limit rows are loaded whole. The API caps offset, so this stays a bounded read.
    """
    keys: list[tuple[Any, int, int]] = []  # (created_at, id, index of the table)
    total = 0
    for index, table in enumerate(tables):
        total += await session.scalar(where.apply(select(func.count()).select_from(table), table)) or 0
        statement = where.apply(select(table.created_at, table.id), table)
        statement = statement.order_by(table.created_at.desc(), table.id.desc()).limit(offset + limit)
        keys += [(created_at, row_id, index) for created_at, row_id in await session.execute(statement)]
    keys.sort(key=lambda key: (key[0], key[1]), reverse=True)
    page = keys[offset : offset + limit]
    wanted: dict[int, list[int]] = {}
    for _, row_id, index in page:
        wanted.setdefault(index, []).append(row_id)
    loaded: dict[tuple[int, int], FeedbackRowMixin] = {}
    for index, ids in wanted.items():
        table = tables[index]
        for row in await session.scalars(select(table).where(table.id.in_(ids))):
            loaded[(index, row.id)] = row
    # A row deleted between the two reads is left out of the page rather than failing it.
    return [loaded[(index, row_id)] for _, row_id, index in page if (index, row_id) in loaded], total


async def delete_row(session: AsyncSession, table: type[FeedbackRowMixin], row_id: int) -> bool:
    result = await session.execute(delete(table).where(table.id == row_id))
    await session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def stream_rows(
    engine: AsyncEngine, table: type[RowT], newest_first: bool = False, extra_conditions: list[Any] | None = None
) -> AsyncIterator[RowT]:
    """Every row of `table` through a server-side cursor: memory stays flat on large tables."""
    statement = select(table).order_by(table.id.desc() if newest_first else table.id)
    for condition in extra_conditions or []:
        statement = statement.where(condition)
    async with AsyncSession(engine) as session:
        result = await session.stream_scalars(statement.execution_options(yield_per=2000))
        async for row in result:
            yield row
