"""Storage on both backends: migrations, group-commit writes, and feedback read back in prompt order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from llm_feedback_loop.api.feedback_rows import common_values
from llm_feedback_loop.feedback.filters import FeedbackFilter
from llm_feedback_loop.feedback.streams import iter_prompt_groups
from llm_feedback_loop.feedback.writer import BatchedWriter
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.engine import create_engine
from llm_feedback_loop.storage.migrate import current_revision, head_revision, upgrade_to_head
from llm_feedback_loop.storage.tables import Comparison, Correction, Rating


def async_url(database_url: str) -> str:
    return Settings(database_url=database_url, _env_file=None).database_url  # type: ignore[call-arg]


def rating(prompt: str, response: str = "r", vote: str = "up", **extra: Any) -> dict[str, Any]:
    return (
        common_values([{"role": "user", "content": prompt}], None, None)
        | {
            "response": response,
            "rating": vote,
            "model": None,
            "comment": None,
            "generation_id": None,
        }
        | extra
    )


@asynccontextmanager
async def migrated_writer(database_url: str) -> AsyncIterator[tuple[AsyncEngine, BatchedWriter]]:
    """A migrated database and a running writer on it, closed afterwards."""
    engine = create_engine(async_url(database_url))
    await upgrade_to_head(engine)
    writer = BatchedWriter(engine)
    await writer.start()
    try:
        yield engine, writer
    finally:
        await writer.stop()
        await engine.dispose()


def test_migrations_create_the_schema_and_are_idempotent(database_url: str) -> None:
    async def run() -> tuple[str | None, set[str]]:
        engine = create_engine(async_url(database_url))
        try:
            await upgrade_to_head(engine)
            await upgrade_to_head(engine)
            async with engine.connect() as connection:
                tables = await connection.run_sync(
                    lambda sync: set(__import__("sqlalchemy").inspect(sync).get_table_names())
                )
            return await current_revision(engine), tables
        finally:
            await engine.dispose()

    revision, tables = asyncio.run(run())
    assert revision is not None and revision == head_revision()
    assert {"ratings", "comparisons", "corrections", "generations", "alembic_version"} <= tables


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path) -> None:
    async def run() -> tuple[str, int]:
        engine = create_engine(async_url(f"sqlite:///{tmp_path}/nested/folder/db.sqlite"))
        try:
            async with engine.connect() as connection:
                mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
                sync = (await connection.execute(text("PRAGMA synchronous"))).scalar_one()
            return mode, sync
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == ("wal", 2)  # 2 = FULL
    assert (tmp_path / "nested" / "folder" / "db.sqlite").exists()


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


def test_prompt_groups_merge_all_kinds_in_prompt_order(database_url: str) -> None:
    async def run() -> list[Any]:
        async with migrated_writer(database_url) as (engine, writer):
            for prompt in ["alpha", "beta", "gamma"]:
                await writer.insert(Rating, rating(prompt))
            await writer.insert(Rating, rating("beta", "second", "down", annotator="ana"))
            base = common_values([{"role": "user", "content": "beta"}], None, None)
            await writer.insert(
                Comparison,
                base
                | {
                    "responses": [{"text": "x"}, {"text": "y"}],
                    "ranking": [1, 0],
                    "best_index": 1,
                    "comment": None,
                    "model": None,
                },
            )
            delta = common_values([{"role": "user", "content": "delta"}], None, None)
            await writer.insert(
                Correction,
                delta
                | {
                    "original_response": "a",
                    "corrected_response": "b",
                    "model": None,
                    "comment": None,
                    "generation_id": None,
                },
            )
            everything = [g async for g in iter_prompt_groups(engine, FeedbackFilter())]
            by_ana = [g async for g in iter_prompt_groups(engine, FeedbackFilter(annotator="ana"))]
            return [everything, by_ana]

    everything, by_ana = asyncio.run(run())
    assert [g.prompt_hash for g in everything] == sorted(g.prompt_hash for g in everything)
    by_prompt = {g.prompt: g for g in everything}
    assert set(by_prompt) == {"alpha", "beta", "gamma", "delta"}
    beta = by_prompt["beta"]
    assert [r.response for r in beta.ratings] == ["r", "second"]
    assert beta.comparisons[0].responses == ["x", "y"]
    assert by_prompt["delta"].corrections[0].corrected == "b"
    assert [(g.prompt, [r.response for r in g.ratings]) for g in by_ana] == [("beta", ["second"])]
