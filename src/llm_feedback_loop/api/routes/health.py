"""`GET /health`: answers at once; loads no model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from llm_feedback_loop import __version__
from llm_feedback_loop.api.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(state: StateDep) -> Any:
    """Service and database status."""
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:
        return JSONResponse(status_code=503, content={"status": "error", "database": str(error)})
    return {"status": "ok", "version": __version__, "database": state.engine.dialect.name}
