"""Rows for the feedback store's tests: column values as the API builds them, and a migrated writer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from llm_feedback_loop.feedback.rows import common_values
from llm_feedback_loop.feedback.writer import BatchedWriter
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.engine import create_engine
from llm_feedback_loop.storage.migrate import upgrade_to_head


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
