"""Migration 0007 turns the arena votes stored before it into voted battles: the leaderboard keeps them."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from sqlalchemy import insert, select

from llm_feedback_loop.arena.leaderboard import ArenaLeaderboard
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.engine import create_engine
from llm_feedback_loop.storage.migrate import alembic_config, upgrade_to_head
from llm_feedback_loop.storage.prompts import prompt_hash
from llm_feedback_loop.storage.tables import ArenaBattle, Comparison, ModelVersion, utc_now


def old_vote(winner: str | None, versions: tuple[str, str], **metadata: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": "q"}]
    now = utc_now()
    return {
        "created_at": now,
        "updated_at": now,
        "annotator": "ana",
        "metadata": {"arena": True, "winner": winner} | metadata if winner else metadata,
        "prompt": "q",
        "prompt_messages": messages,
        "prompt_hash": prompt_hash(messages),
        "responses": [
            {"id": str(i), "text": f"by {v}", "generation_id": None, "model_version": v} for i, v in enumerate(versions)
        ],
        "ranking": None if winner == "tie" else [0, 1],
    }


def test_old_votes_become_voted_battles(database_url: str) -> None:
    url = Settings(database_url=database_url, _env_file=None).database_url  # type: ignore[call-arg]

    async def run() -> tuple[list[ArenaBattle], dict[str, Any]]:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0006"))
                now = utc_now()
                await connection.execute(
                    insert(ModelVersion).values(
                        name="v1", source="/m/v1", method="sft", status="active", created_at=now, updated_at=now
                    )
                )
                for values in (
                    old_vote("left", ("v1", "v2")),
                    old_vote("tie", ("v2", "v1")),
                    old_vote("left", ("v1", "v2"), note="twice"),
                    old_vote(None, ("v1", "v2"), arena=True),  # no winner: not a vote
                    old_vote("left", ("v1", "v1")),  # one version against itself: not a battle
                    old_vote(None, ("v1", "v2"), source="annotate"),  # a plain comparison
                ):
                    await connection.execute(insert(Comparison).values(values))
            await upgrade_to_head(engine)
            async with engine.connect() as connection:
                battles = list((await connection.execute(select(ArenaBattle).order_by(ArenaBattle.id))).all())
            leaderboard = ArenaLeaderboard(engine)
            board, refreshing = await leaderboard.current()
            await leaderboard.close()
            return battles, {
                "battles": board.battles,
                "top": board.standings[0].model_version,
                "refreshing": refreshing,
            }
        finally:
            await engine.dispose()

    battles, board = asyncio.run(run())
    assert [(b.left_version, b.right_version, b.winner, b.comparison_id) for b in battles] == [
        ("v1", "v2", "left", 1),
        ("v2", "v1", "tie", 2),
        ("v1", "v2", "left", 3),
    ]
    assert all(b.annotator == "ana" and b.voted_at is not None for b in battles)
    assert battles[0].left_version_id == 1 and battles[0].right_version_id is None  # v2 was never registered
    assert board == {"battles": 3, "top": "v1", "refreshing": False}
