"""Shared fixtures: the database backends (SQLite file, real PostgreSQL) and a client of the service.

API tests take `client`; they run once on SQLite and once on a PostgreSQL server the suite starts.
Outside CI a machine without PostgreSQL skips the PostgreSQL runs; in CI (CI set) they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from llm_feedback_loop.api.app import create_app
from llm_feedback_loop.settings import Settings
from tests.support.accounts import bearer, issue_keys
from tests.support.postgres import find_pg_bin, running_postgres

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The TestClient calls itself `testserver`; the servers the tests start are reached as 127.0.0.1.
os.environ.setdefault("TRUSTED_HOSTS", "127.0.0.1,localhost,testserver")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Llama with its tokenizer and chat template, built once per test session."""
    from llm_feedback_loop.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    if find_pg_bin() is None:
        message = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the PostgreSQL tests")
        pytest.skip(message)
    with running_postgres() as url:
        yield url


async def _execute_admin(admin_url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/feedback.db"
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    name = f"test_{uuid.uuid4().hex[:16]}"
    asyncio.run(_execute_admin(admin_url, f"CREATE DATABASE {name}"))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_execute_admin(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def api_keys(settings: Settings) -> dict[str, str]:
    """An API key per role (users root/admin, annie/annotator, vera/viewer) on the test database."""
    return issue_keys(settings.database_url)


@pytest.fixture
def client(settings: Settings, api_keys: dict[str, str]) -> Iterator[TestClient]:
    """A client of the service that sends the admin's key; pass `headers=bearer(api_keys[ROLE])` to call as
    another role, or `headers=ANONYMOUS` (tests.support.accounts) as nobody."""
    with TestClient(create_app(settings), headers=bearer(api_keys["admin"])) as test_client:
        yield test_client
