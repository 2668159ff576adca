"""`GET /health`: answers at once; loads no model."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from llm_feedback_loop import __version__
from llm_feedback_loop.api.deps import StateDep

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/health")
async def health(state: StateDep) -> Any:
    """Service and database status."""
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # the reason goes to the log, not to an anonymous caller (it can name hosts and users)
        log.exception("the database does not answer")
        return JSONResponse(status_code=503, content={"status": "error", "database": "not reachable (see the log)"})
    return {"status": "ok", "version": __version__, "database": state.engine.dialect.name}
