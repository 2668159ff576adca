"""The FastAPI application: `create_app()`; `llmfl serve` runs it with uvicorn."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from llm_feedback_loop import __version__
from llm_feedback_loop.api.errors import install_error_handlers
from llm_feedback_loop.api.guards import install_http_guards
from llm_feedback_loop.api.guards.strict_json import StrictJSONBody
from llm_feedback_loop.api.routes import (
    accounts,
    annotations,
    arena,
    chat,
    dashboard,
    export,
    feedback,
    health,
    legacy,
    runs,
    tasks,
)
from llm_feedback_loop.api.security import Authenticator
from llm_feedback_loop.api.state import open_service_state
from llm_feedback_loop.logging_redaction import install_log_redaction
from llm_feedback_loop.settings import Settings, get_settings
from llm_feedback_loop.web.pages import install_pages


def create_app(settings: Settings | None = None) -> FastAPI:
    install_log_redaction()  # keys and URL passwords never reach the log
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_service_state(settings) as state:
            app.state.service = state
            app.state.auth = Authenticator(state.sessions, required=settings.auth_required)
            # What start-up allocated lives as long as the process: keep it out of the garbage collector's
            # full passes, which otherwise stall every request for tens of milliseconds.
            gc.collect()
            gc.freeze()
            yield

    app = FastAPI(
        title="llm-feedback-loop",
        version=__version__,
        description="Collect human feedback on LLM answers and export it as training data.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(StrictJSONBody)
    install_http_guards(app, settings)
    for module in (health, accounts, legacy, chat, export, runs, annotations, arena, tasks, dashboard, feedback):
        app.include_router(module.router)
    install_pages(app)
    return app
