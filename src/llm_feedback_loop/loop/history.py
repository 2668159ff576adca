"""The loop's history: one `loop_rounds` row per round (what it collected, trained and decided), and the
training run a round started. The versions' evaluations are kept by `evaluation.versions`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.storage.tables import LoopRound, TrainingRun, utc_now


async def rounds_of(session: AsyncSession, loop: str) -> list[LoopRound]:
    return list(await session.scalars(select(LoopRound).where(LoopRound.loop == loop).order_by(LoopRound.round)))


async def start_round(session: AsyncSession, loop: str, number: int, objective: str, base_id: int | None) -> LoopRound:
    """A new row, or the failed row of the same round started again: what that attempt collected (its
    feedback, batch and exports) is kept and used again, so a rerun trains on the same data. The row's
    `task` column holds the objective's name."""
    row = await session.scalar(select(LoopRound).where(LoopRound.loop == loop, LoopRound.round == number))
    if row is None:
        row = LoopRound(loop=loop, round=number, task=objective)
        session.add(row)
    elif row.base_version_id != base_id:  # another version is active now: what was collected is not its
        row.feedback = row.data = row.run_ids = row.batch = None
    row.status, row.error, row.base_version_id, row.finished_at, row.task = "running", None, base_id, None, objective
    row.candidate_version_id = row.promoted = row.metrics = row.decision = None
    await session.commit()
    return row


async def update_round(session: AsyncSession, row_id: int, **values: Any) -> None:
    row = await session.get(LoopRound, row_id)
    assert row is not None
    for key, value in values.items():
        setattr(row, key, value)
    if values.get("status") in ("completed", "failed"):
        row.finished_at = utc_now()
    await session.commit()


async def record_cost(session: AsyncSession, loop: str, number: int, cost: dict[str, float]) -> None:
    """What the round cost (wall seconds, CPU-minutes), kept with its metrics."""
    row = await session.scalar(select(LoopRound).where(LoopRound.loop == loop, LoopRound.round == number))
    if row is not None:
        row.metrics = {**(row.metrics or {}), "cost": cost}
        await session.commit()


async def run_for_output(session: AsyncSession, output_dir: str) -> TrainingRun | None:
    return await session.scalar(
        select(TrainingRun).where(TrainingRun.output_dir == output_dir).order_by(TrainingRun.id.desc()).limit(1)
    )


def describe_round(row: LoopRound, names: dict[int, str]) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "round": row.round,
        "status": row.status,
        "base": names.get(row.base_version_id or 0),
        "candidate": names.get(row.candidate_version_id or 0),
        "promoted": row.promoted,
        "batch": row.batch,
        "feedback": row.feedback,
        "data": row.data,
        "run_ids": row.run_ids,
        "metrics": row.metrics,
        "decision": row.decision,
        "error": row.error,
        "started_at": iso(row.created_at),
        "finished_at": iso(row.finished_at),
    }
