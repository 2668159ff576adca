"""Dependencies the routes declare."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.api.state import ServiceState


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


async def get_session(state: Annotated[ServiceState, Depends(get_state)]) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as session:
        yield session


StateDep = Annotated[ServiceState, Depends(get_state)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
