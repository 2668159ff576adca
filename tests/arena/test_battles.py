"""The database, not a read before the write, takes one vote per battle: ten votes at once store one
comparison, and the losers' comparisons roll back with them."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from llm_feedback_loop.arena.battles import find_battle, record_vote, store_battle
from llm_feedback_loop.feedback.rows import common_values
from llm_feedback_loop.models.registry import add_version
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.engine import create_engine, create_session_factory
from llm_feedback_loop.storage.migrate import upgrade_to_head
from llm_feedback_loop.storage.tables import ArenaBattle, Comparison

MESSAGES = [{"role": "user", "content": "q"}]


def answer(version_name: str) -> dict:
    return common_values(MESSAGES, "ana", None) | {"response": f"by {version_name}", "model_version": version_name}


def test_concurrent_votes_on_one_battle_store_one_comparison(database_url: str) -> None:
    url = Settings(database_url=database_url, _env_file=None).database_url  # type: ignore[call-arg]

    async def run() -> tuple[list[int | None], int, ArenaBattle, bool]:
        engine = create_engine(url)
        try:
            await upgrade_to_head(engine)
            sessions = create_session_factory(engine)
            async with sessions() as session:
                a = await add_version(session, "/m/a", name="a", activate=True)
                b = await add_version(session, "/m/b", name="b")
                battle, generation_ids = await store_battle(session, "ana", [(a, answer("a")), (b, answer("b"))])
                found = await find_battle(session, None, generation_ids[::-1])
                assert found is not None and found.battle.id == battle.id
                flipped = found.flipped

            async def vote(winner: str) -> int | None:
                async with sessions() as session:
                    values = common_values(MESSAGES, "ana", {"arena": True}) | {
                        "responses": [{"id": "0", "generation_id": generation_ids[0]}],
                        "ranking": None,
                    }
                    return await record_vote(session, battle.id, winner, values)  # type: ignore[arg-type]

            results = await asyncio.gather(*(vote(w) for w in ["left", "right"] * 5))
            async with sessions() as session:
                stored = await session.scalar(select(func.count()).select_from(Comparison))
                voted = await session.get(ArenaBattle, battle.id)
            assert voted is not None
            return results, int(stored or 0), voted, flipped
        finally:
            await engine.dispose()

    results, stored, voted, flipped = asyncio.run(run())
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and stored == 1 and voted.comparison_id == winners[0]
    assert voted.voted_at is not None and voted.winner in ("left", "right") and voted.annotator == "ana"
    assert flipped  # named right answer first
