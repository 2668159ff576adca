"""The model registry: add, activate (one active at a time), the base registered on first use."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.models.registry import (
    RegistryError,
    activate_version,
    active_version,
    add_version,
    ensure_active_version,
    find_version,
    list_versions,
)
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.engine import create_engine
from llm_feedback_loop.storage.migrate import upgrade_to_head


def in_session(database_url: str, work: Any) -> Any:
    async def run() -> Any:
        engine = create_engine(Settings(database_url=database_url, _env_file=None).database_url)  # type: ignore[call-arg]
        await upgrade_to_head(engine)
        try:
            async with AsyncSession(engine, expire_on_commit=False) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_base_is_registered_and_activated_on_first_use(database_url: str) -> None:
    async def work(session: AsyncSession) -> Any:
        first = await ensure_active_version(session, "HuggingFaceTB/SmolLM2-135M-Instruct")
        again = await ensure_active_version(session, "HuggingFaceTB/SmolLM2-135M-Instruct")
        return first, again, await list_versions(session)

    first, again, versions = in_session(database_url, work)
    assert first.id == again.id and len(versions) == 1
    assert (first.name, first.method, first.status) == ("SmolLM2-135M-Instruct", "base", "active")


def test_activation_retires_the_previous_version(database_url: str) -> None:
    async def work(session: AsyncSession) -> Any:
        base = await add_version(session, "/models/base", method="base", activate=True)
        child = await add_version(session, "/models/sft-1", name="sft-1", method="sft", parent=base)
        assert child.status == "candidate" and child.parent_id == base.id
        await activate_version(session, "sft-1")
        statuses = {v.name: v.status for v in await list_versions(session)}
        return statuses, (await active_version(session)).name, await find_version(session, str(child.id))

    statuses, active, by_id = in_session(database_url, work)
    assert statuses == {"base": "retired", "sft-1": "active"}
    assert active == "sft-1" and by_id.name == "sft-1"


def test_names_are_unique(database_url: str) -> None:
    async def work(session: AsyncSession) -> Any:
        a = await add_version(session, "/models/m")
        b = await add_version(session, "/other/m")
        with pytest.raises(RegistryError, match="exists already"):
            await add_version(session, "/x", name=a.name)
        with pytest.raises(RegistryError, match="no model version 'nope'"):
            await activate_version(session, "nope")
        return a.name, b.name

    assert in_session(database_url, work) == ("m", "m-2")
