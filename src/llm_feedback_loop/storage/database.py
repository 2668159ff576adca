"""One database context: an engine, its session factory, and the migrations check, done once per process.

A command (`llmfl ...`), the service and serve-model each open one `Database` and pass it down; a library
function takes the engine or a session, never a URL. Bringing the schema to the newest migration loads
Alembic's scripts (~0.2 s); it runs the first time a process opens a database, not on every call.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from llm_feedback_loop.storage.engine import create_engine, create_session_factory, is_sqlite, sqlite_file
from llm_feedback_loop.storage.migrate import upgrade_to_head

# The databases this process has brought up to date. A SQLite file is known by its inode as well as its name:
# a file deleted and made again (a test's fresh database at the same path) is checked again.
_migrated: set[tuple[str, Any]] = set()


def _identity(url: str) -> tuple[str, Any]:
    if is_sqlite(url):
        path = sqlite_file(url)
        if path is None:  # in memory: a new database each time
            return url, object()
        try:
            status = os.stat(path)
        except OSError:
            return url, None
        return url, (status.st_dev, status.st_ino)
    return url, "server"


class Database:
    """An open database: `engine` for streams and bulk work, `session()` for the rest."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_engine(url)
        self.sessions: async_sessionmaker[AsyncSession] = create_session_factory(self.engine)

    def session(self) -> AsyncSession:
        return self.sessions()

    async def ready(self) -> Database:
        """Bring the schema up to date unless this process has already done so for this database."""
        identity = _identity(self.url)
        if identity[1] is None or identity not in _migrated:
            await upgrade_to_head(self.engine)
            _migrated.add(_identity(self.url))
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
