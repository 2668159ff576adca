"""The database on both backends: migrations, one database context per process, SQLite's durability settings."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.database import open_database
from llm_feedback_loop.storage.engine import create_engine
from llm_feedback_loop.storage.migrate import current_revision, head_revision, upgrade_to_head


def async_url(database_url: str) -> str:
    return Settings(database_url=database_url, _env_file=None).database_url  # type: ignore[call-arg]


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


def test_open_database_brings_a_new_database_to_the_newest_schema(database_url: str) -> None:
    async def run() -> tuple[str | None, int]:
        database = await open_database(async_url(database_url))
        try:
            async with database.session() as session:
                ratings = (await session.execute(text("SELECT count(*) FROM ratings"))).scalar_one()
            return await current_revision(database.engine), ratings
        finally:
            await database.close()

    assert asyncio.run(run()) == (head_revision(), 0)


def test_a_database_made_again_under_the_same_name_is_migrated_again(tmp_path) -> None:
    """Nothing is remembered across opens: a SQLite file deleted and made again (its inode may be reused) gets
    its schema on the next open, as a PostgreSQL database dropped and created again would."""
    url = async_url(f"sqlite:///{tmp_path}/again.db")

    async def tables_after_open() -> set[str]:
        database = await open_database(url)
        try:
            async with database.engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: set(__import__("sqlalchemy").inspect(sync).get_table_names())
                )
        finally:
            await database.close()

    assert "ratings" in asyncio.run(tables_after_open())
    for leftover in tmp_path.glob("again.db*"):
        leftover.unlink()
    (tmp_path / "again.db").touch()  # an empty file in its place
    assert "ratings" in asyncio.run(tables_after_open())
