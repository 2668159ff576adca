"""A version's evaluations, kept in its metadata (`evaluations`, oldest first): the one place that appends
them (`llmfl eval` and the loop alike) and reads the latest back."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.evaluation.result import Evaluation
from llm_feedback_loop.storage.tables import ModelVersion


async def keep_evaluation(session: AsyncSession, version_id: int, evaluation: Evaluation) -> None:
    """Append an evaluation (without its lists) to the version's metadata."""
    version = await session.get(ModelVersion, version_id)
    assert version is not None
    metadata = dict(version.extra or {})
    metadata["evaluations"] = [*metadata.get("evaluations", []), evaluation.kept()]
    version.extra = metadata
    await session.commit()


def latest_evaluation(version: ModelVersion, data_path: str) -> dict[str, Any] | None:
    """The version's latest evaluation on `data_path` (an export's path, or `task:NAME`), as kept."""
    found = [e for e in (version.extra or {}).get("evaluations", []) if e["data"]["path"] == data_path]
    return found[-1] if found else None


async def version_and_parent(session: AsyncSession, ref: str) -> tuple[ModelVersion | None, ModelVersion | None]:
    """(the version, its parent) of a registered ref; (None, None) for a folder or hub id."""
    from llm_feedback_loop.models.registry import find_version

    version = await find_version(session, ref)
    parent = await session.get(ModelVersion, version.parent_id) if version and version.parent_id else None
    return version, parent
