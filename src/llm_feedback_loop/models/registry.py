"""The model registry: every model version the loop knows, and which one is active.

Chat and serving use the active version. The base model is registered (and activated) on first use;
training registers its outputs as `candidate` versions; `llmfl models activate` (or promotion) makes
one active and retires the one before it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.storage.tables import ModelVersion, utc_now

STATUSES = ("candidate", "active", "retired")


class RegistryError(ValueError):
    """A registry request that cannot be carried out; the message says why."""


async def list_versions(session: AsyncSession) -> list[ModelVersion]:
    return list(await session.scalars(select(ModelVersion).order_by(ModelVersion.id)))


async def find_version(session: AsyncSession, ref: str | int) -> ModelVersion | None:
    """A version by id (a number) or by name."""
    if (isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit())) and 0 < int(ref) < 2**63:
        found = await session.get(ModelVersion, int(ref))
        if found is not None:
            return found
    return await session.scalar(select(ModelVersion).where(ModelVersion.name == str(ref)))


async def active_version(session: AsyncSession) -> ModelVersion | None:
    return await session.scalar(select(ModelVersion).where(ModelVersion.status == "active"))


def default_name(source: str) -> str:
    """A readable name for a source: the last part of a hub id or path."""
    text = source.rstrip("/")
    return Path(text).name or text


async def unique_name(session: AsyncSession, wanted: str) -> str:
    name, counter = wanted, 2
    while await session.scalar(select(ModelVersion.id).where(ModelVersion.name == name)) is not None:
        name = f"{wanted}-{counter}"
        counter += 1
    return name


async def add_version(
    session: AsyncSession,
    source: str,
    *,
    name: str | None = None,
    method: str = "manual",
    parent: ModelVersion | None = None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
    activate: bool = False,
) -> ModelVersion:
    """Register a model version (a `candidate`, or `active` with activate=True) and commit."""
    if name is not None and await find_version(session, name) is not None:
        raise RegistryError(f"a model version named {name!r} exists already; choose another --name")
    version = ModelVersion(
        name=name or await unique_name(session, default_name(source)),
        source=source,
        parent_id=parent.id if parent else None,
        method=method,
        status="candidate",
        description=description,
        extra=metadata,
    )
    session.add(version)
    await session.flush()
    if activate:
        await _make_active(session, version)
    await session.commit()
    return version


async def activate_version(session: AsyncSession, ref: str | int) -> ModelVersion:
    """Make a version the active one (the one before it becomes `retired`) and commit."""
    version = await find_version(session, ref)
    if version is None:
        raise RegistryError(f"no model version {ref!r}; `llmfl models list` shows them")
    await _make_active(session, version)
    await session.commit()
    return version


async def _make_active(session: AsyncSession, version: ModelVersion) -> None:
    if version.method == "reward":
        raise RegistryError(f"{version.name} is a reward model: it scores answers, it cannot be the chat model")
    now = utc_now()
    await session.execute(
        update(ModelVersion)
        .where(ModelVersion.status == "active", ModelVersion.id != version.id)
        .values(status="retired", updated_at=now)
    )
    version.status = "active"
    version.updated_at = now


async def ensure_active_version(session: AsyncSession, base_source: str, base_name: str | None = None) -> ModelVersion:
    """The active version; on first use, the base model registered and activated."""
    active = await active_version(session)
    if active is not None:
        return active
    existing = await session.scalar(
        select(ModelVersion).where(ModelVersion.source == base_source, ModelVersion.method == "base")
    )
    if existing is not None:
        return await activate_version(session, existing.id)
    return await add_version(session, base_source, name=base_name, method="base", activate=True)


def describe(version: ModelVersion) -> dict[str, Any]:
    return {
        "id": version.id,
        "name": version.name,
        "source": version.source,
        "parent_id": version.parent_id,
        "method": version.method,
        "status": version.status,
        "description": version.description,
        "created_at": version.created_at,
        "metadata": version.extra,
    }
