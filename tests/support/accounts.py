"""Users and API keys for tests: made straight in the database, as `llmfl keys create` makes them."""

from __future__ import annotations

import asyncio

from llm_feedback_loop.auth import accounts
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.engine import create_engine, create_session_factory
from llm_feedback_loop.storage.migrate import upgrade_to_head

# The users every API test has, one per role.
TEST_USERS = {"admin": "root", "annotator": "annie", "viewer": "vera"}


async def _issue(database_url: str, users: dict[str, str]) -> dict[str, str]:
    engine = create_engine(Settings(database_url=database_url, _env_file=None).database_url)  # type: ignore[call-arg]
    try:
        await upgrade_to_head(engine)
        async with create_session_factory(engine)() as session:
            keys = {}
            for role, name in users.items():
                user = await accounts.find_user(session, name) or await accounts.create_user(session, name, role)
                keys[role] = (await accounts.create_key(session, user))[1]
            await session.commit()
            return keys
    finally:
        await engine.dispose()


def issue_keys(database_url: str, users: dict[str, str] | None = None) -> dict[str, str]:
    """{role: API key} for the users (role → name; default TEST_USERS), created if missing."""
    return asyncio.run(_issue(database_url, users or TEST_USERS))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


ANONYMOUS = {"Authorization": ""}  # overrides a client's default key: a request with no credentials


def admin_client(settings: Settings):
    """A TestClient of the service on `settings` that sends an admin's key."""
    from fastapi.testclient import TestClient

    from llm_feedback_loop.api.app import create_app

    return TestClient(create_app(settings), headers=bearer(issue_keys(settings.database_url)["admin"]))
