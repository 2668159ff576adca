"""What the running service holds: settings, its one database context, and the services built on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from llm_feedback_loop.arena.contenders import ArenaModels
from llm_feedback_loop.chat.service import ChatService
from llm_feedback_loop.feedback.writer import BatchedWriter
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.database import Database, open_database
from llm_feedback_loop.training.scheduler import TrainingJobs


@dataclass
class ServiceState:
    settings: Settings
    database: Database
    writer: BatchedWriter
    chat: ChatService
    jobs: TrainingJobs
    arena: ArenaModels

    @property
    def engine(self) -> AsyncEngine:
        """For streams and bulk reads; a request's own reads and writes use its session (`deps.SessionDep`)."""
        return self.database.engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.database.sessions


@asynccontextmanager
async def open_service_state(settings: Settings) -> AsyncIterator[ServiceState]:
    """Open the database (its schema brought to the newest migration), start the writer; undo it all on exit."""
    database = await open_database(settings.database_url)
    try:
        writer = BatchedWriter(database.engine)
        await writer.start()
        chat = ChatService(settings, database.engine)  # loads no model until the first local chat
        try:
            jobs = TrainingJobs(settings.database_url)
            arena = ArenaModels(
                database.engine, settings.base_model, settings.model_device, pack_linear=settings.model_packed_linear
            )
            try:
                yield ServiceState(settings, database, writer, chat, jobs, arena)
            finally:
                await arena.close()
        finally:
            await chat.close()
            await writer.stop()
    finally:
        await database.close()
