"""The group-commit writer on both backends: concurrent writes share commits and all land, one bad row fails
alone, and keys that are not columns are refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from llm_feedback_loop.feedback.writer import BatchedWriter
from llm_feedback_loop.storage.engine import create_engine
from llm_feedback_loop.storage.tables import Rating
from tests.feedback.rows import async_url, migrated_writer, rating


def test_concurrent_writes_share_commits_and_all_land(database_url: str) -> None:
    async def run() -> tuple[list[int], int]:
        async with migrated_writer(database_url) as (engine, writer):
            ids = await asyncio.gather(*(writer.insert(Rating, rating(f"p{i}")) for i in range(200)))
            async with engine.connect() as connection:
                stored = (await connection.execute(select(func.count()).select_from(Rating))).scalar_one()
            return list(ids), stored

    ids, stored = asyncio.run(run())
    assert len(set(ids)) == 200 and stored == 200


def test_one_bad_row_fails_alone(database_url: str) -> None:
    async def run() -> list[Any]:
        async with migrated_writer(database_url) as (engine, writer):
            results = await asyncio.gather(
                writer.insert(Rating, rating("good-1")),
                writer.insert(Rating, rating("bad", generation_id=424242)),  # no such generation
                writer.insert(Rating, rating("good-2")),
                return_exceptions=True,
            )
            async with engine.connect() as connection:
                prompts = (await connection.execute(select(Rating.prompt).order_by(Rating.id))).scalars().all()
            return [results, prompts]

    (first, bad, second), prompts = asyncio.run(run())
    assert isinstance(first, int) and isinstance(second, int)
    assert isinstance(bad, Exception)
    assert prompts == ["good-1", "good-2"]


def test_writer_refuses_keys_that_are_not_columns(database_url: str) -> None:
    async def run() -> None:
        engine = create_engine(async_url(database_url))
        writer = BatchedWriter(engine)
        await writer.start()
        try:
            await writer.insert(Rating, rating("p") | {"extra": {"lost": True}})
        finally:
            await writer.stop()
            await engine.dispose()

    with pytest.raises(ValueError, match="not columns of ratings: extra"):
        asyncio.run(run())
