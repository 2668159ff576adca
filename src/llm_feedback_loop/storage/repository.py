"""Reads and deletes of feedback rows (inserts go through `writer.BatchedWriter`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from llm_feedback_loop.storage.filters import FeedbackFilter
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
