"""Dependencies the routes declare."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.api.state import ServiceState


async def get_state(request: Request) -> ServiceState:
    # async: a plain def would run in the threadpool, a thread hop on every request.
    return request.app.state.service


async def get_session(state: Annotated[ServiceState, Depends(get_state)]) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as session:
        yield session


StateDep = Annotated[ServiceState, Depends(get_state)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
