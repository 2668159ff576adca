"""What the running service holds: settings, the engine, the session factory and the batched writer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from llm_feedback_loop.arena.contenders import ArenaModels
from llm_feedback_loop.chat.service import ChatService
from llm_feedback_loop.feedback.writer import BatchedWriter
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.engine import create_engine, create_session_factory
from llm_feedback_loop.storage.migrate import upgrade_to_head
from llm_feedback_loop.training.scheduler import TrainingJobs


@dataclass
class ServiceState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    writer: BatchedWriter
    chat: ChatService
    jobs: TrainingJobs
    arena: ArenaModels


@asynccontextmanager
async def open_service_state(settings: Settings) -> AsyncIterator[ServiceState]:
    """Connect, migrate to the newest schema, start the writer; undo it all on exit."""
    engine = create_engine(settings.database_url)
    try:
        await upgrade_to_head(engine)
        writer = BatchedWriter(engine)
        await writer.start()
        chat = ChatService(settings, engine)  # loads no model until the first local chat
        try:
            jobs = TrainingJobs(settings.database_url)
            arena = ArenaModels(engine, settings.base_model, settings.model_device)
            try:
                yield ServiceState(settings, engine, create_session_factory(engine), writer, chat, jobs, arena)
            finally:
                await arena.close()
        finally:
            await chat.close()
            await writer.stop()
    finally:
        await engine.dispose()
