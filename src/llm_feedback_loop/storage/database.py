"""One database context: an engine, its session factory, and its schema brought up to date once.

A command (`llmfl ...`), the service and serve-model each open one `Database` and pass it down; a library
function takes the engine or a session, never a URL. Running Alembic's upgrade loads its scripts and walks
them (~0.2 s); a database already at the newest revision costs one query instead (its `alembic_version`
compared with the head, which this process reads from the scripts once).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from llm_feedback_loop.storage.engine import create_engine, create_session_factory
from llm_feedback_loop.storage.migrate import current_revision, head_revision, upgrade_to_head

T = TypeVar("T")


class RunOnDatabase(Protocol):
    """Runs async work on an open database and returns its result: what a stage of the loop is given to reach
    the database from synchronous code (the CLI passes `cli.common.with_database`: one engine and event loop
    for the whole command)."""

    def __call__(self, work: Callable[[AsyncEngine], Awaitable[T]], /) -> T: ...


def in_session(run_on: RunOnDatabase, work: Callable[[AsyncSession], Awaitable[T]], *, commit: bool = False) -> T:
    """`work(session)` in one session (its objects stay readable afterwards), committed at the end if asked."""

    async def run(engine: AsyncEngine) -> T:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            result = await work(session)
            if commit:
                await session.commit()
            return result

    return run_on(run)


@cache
def newest_revision() -> str | None:
    """The head migration of this code: read once per process."""
    return head_revision()


class Database:
    """An open database: `engine` for streams and bulk work, `session()` for the rest."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_engine(url)
        self.sessions: async_sessionmaker[AsyncSession] = create_session_factory(self.engine)

    def session(self) -> AsyncSession:
        return self.sessions()

    async def ready(self) -> Database:
        """Bring the schema up to date (created on first use); one query when it is so already. Checked on
        every open, not remembered: a database deleted and made again under the same name is migrated."""
        if await current_revision(self.engine) != newest_revision():
            await upgrade_to_head(self.engine)
        return self

    async def close(self) -> None:
        await self.engine.dispose()


async def open_database(url: str) -> Database:
    """A Database for `url`, with its schema up to date (created on first use)."""
    database = Database(url)
    try:
        return await database.ready()
    except BaseException:
        await database.close()
        raise
