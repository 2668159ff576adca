"""What the dashboard reads: feedback counts over time, by annotator and by model version; the model
versions with their lineage."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import func, select

from llm_feedback_loop.api.deps import SessionDep, require_read
from llm_feedback_loop.models.registry import describe, list_versions
from llm_feedback_loop.storage.tables import Comparison, Correction, Generation, Rating, utc_now

router = APIRouter(prefix="/v1", tags=["dashboard"], dependencies=[Depends(require_read)])

KINDS = {"rating": Rating, "comparison": Comparison, "correction": Correction, "generation": Generation}


@router.get("/stats")
async def stats(session: SessionDep, days: Annotated[int, Query(ge=1, le=3650)] = 30) -> dict[str, Any]:
    """Rows per day and kind over the last `days` days; feedback per annotator; answers and their ratings
    per model version."""
    since = utc_now() - timedelta(days=days)
    by_day: dict[str, dict[str, int]] = {}
    by_annotator: dict[str, int] = {}
    for kind, table in KINDS.items():
        day = func.date(table.created_at)
        rows = await session.execute(
            select(day, func.count()).where(table.created_at >= since).group_by(day).order_by(day)
        )
        for when, count in rows:
            by_day.setdefault(str(when), dict.fromkeys(KINDS, 0))[kind] = count
        if kind != "generation":
            annotators = await session.execute(select(table.annotator, func.count()).group_by(table.annotator))
            for name, count in annotators:
                key = name or "(anonymous)"
                by_annotator[key] = by_annotator.get(key, 0) + count
    versions = await session.execute(select(Generation.model_version, func.count()).group_by(Generation.model_version))
    ratings = await session.execute(
        select(Generation.model_version, Rating.rating, func.count())
        .join(Generation, Rating.generation_id == Generation.id)
        .group_by(Generation.model_version, Rating.rating)
    )
    by_version: dict[str, dict[str, int]] = {}
    for version, count in versions:
        by_version.setdefault(version or "(unknown)", {"answers": 0, "up": 0, "down": 0})["answers"] = count
    for version, rating, count in ratings:
        by_version.setdefault(version or "(unknown)", {"answers": 0, "up": 0, "down": 0})[rating] = count
    return {
        "days": days,
        "by_day": [{"day": day, **counts} for day, counts in sorted(by_day.items())],
        "by_annotator": [{"annotator": a, "count": c} for a, c in sorted(by_annotator.items(), key=lambda i: -i[1])],
        "by_model_version": [{"model_version": v, **c} for v, c in sorted(by_version.items())],
    }


@router.get("/model-versions")
async def model_versions(session: SessionDep) -> list[dict[str, Any]]:
    """Every registered model version (oldest first) with its parent, status and training metrics."""
    return [describe(version) for version in await list_versions(session)]
