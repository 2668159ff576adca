"""Dependencies the routes declare."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.api.security import require
from llm_feedback_loop.api.state import ServiceState
from llm_feedback_loop.auth.accounts import Principal
from llm_feedback_loop.auth.roles import Permission


async def get_state(request: Request) -> ServiceState:
    # async: a plain def would run in the threadpool, a thread hop on every request.
    return request.app.state.service


async def get_session(state: Annotated[ServiceState, Depends(get_state)]) -> AsyncIterator[AsyncSession]:
    """The request's one session (FastAPI makes it once per request, however many dependencies ask for it),
    closed at the end of the request."""
    async with state.database.session() as session:
        yield session


StateDep = Annotated[ServiceState, Depends(get_state)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]


# Who may call an endpoint: one of these on every route (tests/api/test_access.py checks each route × role).
require_admin = require(Permission.manage)
require_export = require(Permission.export)
require_annotate = require(Permission.annotate)
require_annotate_making = require(Permission.annotate, csrf_on_reads=True)  # a GET that generates answers
require_chat = require(Permission.chat)
require_read = require(Permission.read)
require_read_feedback = require(Permission.read_own)
require_annotate_or_read = require(Permission.annotate, Permission.read)
require_signed_in = require(*Permission)  # any role: who am I, log out

Admin = Annotated[Principal, Depends(require_admin)]
Annotator = Annotated[Principal, Depends(require_annotate)]
AnnotatorMaking = Annotated[Principal, Depends(require_annotate_making)]
Chatter = Annotated[Principal, Depends(require_chat)]
FeedbackReader = Annotated[Principal, Depends(require_read_feedback)]
SignedIn = Annotated[Principal, Depends(require_signed_in)]
