"""Arena battles in the database: the battle the service issues, and the one vote it takes.

A vote is accepted only for a battle the service issued, and only from the annotator it was issued to, so
what a client writes in a generation's metadata decides nothing. One vote per battle is enforced by the
database, not by a read before the write: the vote's comparison is inserted and the battle claimed with
UPDATE ... WHERE voted_at IS NULL in one transaction; a concurrent second vote claims no row and rolls back
its comparison with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.storage.tables import (
    ArenaBattle,
    Comparison,
    Generation,
    ModelVersion,
    check_column_names,
    utc_now,
)

Winner = Literal["left", "right", "tie"]
FLIPPED: dict[str, Winner] = {"left": "right", "right": "left", "tie": "tie"}


async def store_battle(
    session: AsyncSession, annotator: str, answers: list[tuple[ModelVersion, dict[str, Any]]]
) -> tuple[ArenaBattle, list[int]]:
    """Store both answers (generations values, in the order shown: left, right) and the battle issued to
    `annotator`, in one transaction; returns the battle and the generations' ids."""
    generation_ids = []
    for _, values in answers:
        check_column_names(Generation, values)
        inserted = await session.execute(insert(Generation).values(values).returning(Generation.id))
        generation_ids.append(inserted.scalar_one())
    (left, left_values), (right, _) = answers
    battle = ArenaBattle(
        created_at=utc_now(),
        annotator=annotator,
        prompt_hash=left_values["prompt_hash"],
        left_generation_id=generation_ids[0],
        right_generation_id=generation_ids[1],
        left_version=left.name,
        right_version=right.name,
        left_version_id=left.id,
        right_version_id=right.id,
    )
    session.add(battle)
    await session.commit()
    return battle, generation_ids


@dataclass(frozen=True)
class FoundBattle:
    battle: ArenaBattle
    flipped: bool  # the client named the answers right first: its "left" is the battle's right


async def find_battle(
    session: AsyncSession, battle_id: int | None, generation_ids: list[int] | None
) -> FoundBattle | None:
    """The battle named by id, or by its two answers' generations (in either order)."""
    if battle_id is not None:
        battle = await session.get(ArenaBattle, battle_id)
    else:
        assert generation_ids is not None
        first, second = generation_ids
        battle = await session.scalar(
            select(ArenaBattle)
            .where(
                or_(
                    and_(ArenaBattle.left_generation_id == first, ArenaBattle.right_generation_id == second),
                    and_(ArenaBattle.left_generation_id == second, ArenaBattle.right_generation_id == first),
                )
            )
            .limit(1)
        )
    if battle is None:
        return None
    flipped = generation_ids is not None and generation_ids[0] == battle.right_generation_id
    return FoundBattle(battle, flipped)


async def record_vote(
    session: AsyncSession, battle_id: int, winner: Winner, comparison_values: dict[str, Any]
) -> int | None:
    """Store the vote (the comparison with `comparison_values`, and the battle marked voted) in one
    transaction; the comparison's id, or None when the battle had been voted on already (nothing stored:
    the rollback also expires the session's objects, so callers keep what they need as plain values)."""
    check_column_names(Comparison, comparison_values)
    inserted = await session.execute(insert(Comparison).values(comparison_values).returning(Comparison.id))
    comparison_id = inserted.scalar_one()
    claimed = await session.execute(
        update(ArenaBattle)
        .where(ArenaBattle.id == battle_id, ArenaBattle.voted_at.is_(None))
        .values(voted_at=utc_now(), winner=winner, comparison_id=comparison_id)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        return None
    await session.commit()
    return comparison_id
