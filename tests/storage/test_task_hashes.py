"""Migration 0008 gives the tasks loaded before it the prompt_hash of their messages, as a task loaded after it
gets; downgrading removes the column again."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import JSON, Integer, String, column, insert, inspect, select, table

from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.engine import create_engine
from llm_feedback_loop.storage.migrate import alembic_config, upgrade_to_head
from llm_feedback_loop.storage.prompts import prompt_hash
from llm_feedback_loop.storage.tables import Task, utc_now

MESSAGES = [
    [{"role": "user", "content": "Hi?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q"}],
]


def test_tasks_from_before_the_migration_get_their_prompt_hash_and_downgrade_removes_it(database_url: str) -> None:
    url = Settings(database_url=database_url, _env_file=None).database_url  # type: ignore[call-arg]
    old_tasks = table(
        "tasks",
        column("created_at"),
        column("prompt", String),
        column("prompt_messages", JSON),
        column("required", Integer),
    )

    async def run() -> tuple[list[tuple[list, str]], list[str]]:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0007"))
                for messages in MESSAGES:
                    await connection.execute(
                        insert(old_tasks).values(
                            created_at=utc_now(), prompt=messages[-1]["content"], prompt_messages=messages, required=1
                        )
                    )
            await upgrade_to_head(engine)
            async with engine.connect() as connection:
                rows = (
                    await connection.execute(select(Task.prompt_messages, Task.prompt_hash).order_by(Task.id))
                ).all()
            async with engine.begin() as connection:
                await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0007"))
                columns = await connection.run_sync(
                    lambda sync: [c["name"] for c in inspect(sync).get_columns("tasks")]
                )
            return [tuple(row) for row in rows], columns
        finally:
            await engine.dispose()

    rows, columns_after_downgrade = asyncio.run(run())
    assert rows == [(messages, prompt_hash(messages)) for messages in MESSAGES]
    assert "prompt_hash" not in columns_after_downgrade
