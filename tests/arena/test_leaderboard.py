"""The cached leaderboard: computed once per change of the votes (also a vote stored by another process),
never twice at once, a burst of votes coalesced, a failed computation kept from the requests."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlalchemy import insert

from llm_feedback_loop.arena.leaderboard import ArenaLeaderboard, LeaderboardUnavailable
from llm_feedback_loop.arena.ratings import Battle, Standing, leaderboard
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.engine import create_engine
from llm_feedback_loop.storage.migrate import upgrade_to_head
from llm_feedback_loop.storage.tables import ArenaBattle, Comparison, utc_now


async def store_vote(engine, winner: str, versions: tuple[str, str] = ("a", "b")) -> None:
    """A voted battle written straight to the database, as another process of the service would."""
    now = utc_now()
    async with engine.begin() as connection:
        comparison = await connection.execute(
            insert(Comparison)
            .values(
                created_at=now,
                updated_at=now,
                prompt="q",
                prompt_messages=[{"role": "user", "content": "q"}],
                prompt_hash="h",
                responses=[],
            )
            .returning(Comparison.id)
        )
        await connection.execute(
            insert(ArenaBattle).values(
                created_at=now,
                annotator="ana",
                prompt_hash="h",
                left_version=versions[0],
                right_version=versions[1],
                voted_at=now,
                winner=winner,
                comparison_id=comparison.scalar_one(),
            )
        )


def test_votes_of_another_process_are_noticed_and_each_change_computed_once(database_url: str) -> None:
    url = Settings(database_url=database_url, _env_file=None).database_url  # type: ignore[call-arg]

    async def run() -> None:
        engine = create_engine(url)
        try:
            await upgrade_to_head(engine)
            board = ArenaLeaderboard(engine)
            first, _ = await board.current()
            assert first.battles == 0 and board.recomputations == 1
            await board.current()
            assert board.recomputations == 1
            await store_vote(engine, "left")  # no mark_stale: this process did not see the vote
            second, refreshing = await board.current()
            assert second.battles == 1 and [s.model_version for s in second.standings] == ["a", "b"]
            assert board.recomputations == 2 and not refreshing and second.computed_at >= first.computed_at
            assert (await board.current())[0] is second and board.recomputations == 2
            await board.close()
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_a_burst_of_votes_is_computed_in_few_rounds_one_at_a_time(tmp_path) -> None:
    running, overlaps, calls = [0], [0], [0]
    lock = threading.Lock()

    def slow(battles: list[Battle]) -> list[Standing]:
        with lock:
            running[0] += 1
            overlaps[0] = max(overlaps[0], running[0])
            calls[0] += 1
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return leaderboard(battles)

    async def run() -> ArenaLeaderboard:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
        try:
            await upgrade_to_head(engine)
            board = ArenaLeaderboard(engine, compute=slow, wait_s=0.0)
            await board.current()
            for winner in ["left", "right", "tie"] * 4:
                await store_vote(engine, winner)
                board.mark_stale()  # twelve votes while a computation is under way
                _, refreshing = await board.current()  # wait_s=0: the cached board at once
                assert refreshing
                await asyncio.sleep(0.005)
            while board.refreshing:
                await asyncio.sleep(0.02)
            latest, refreshing = await board.current()
            assert latest.battles == 12 and not refreshing
            await board.close()
            return board
        finally:
            await engine.dispose()

    board = asyncio.run(run())
    assert overlaps[0] == 1 and calls[0] == board.recomputations
    assert 2 <= board.recomputations <= 4  # the first, then the burst in a round or a few: not twelve


def test_a_failed_computation_is_a_503_cause_not_a_crash_and_keeps_the_cached_board(tmp_path) -> None:
    failing = [True]

    def flaky(battles: list[Battle]) -> list[Standing]:
        if failing[0]:
            raise ArithmeticError("no convergence")
        return leaderboard(battles)

    async def run() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
        try:
            await upgrade_to_head(engine)
            board = ArenaLeaderboard(engine, compute=flaky)
            with pytest.raises(LeaderboardUnavailable, match="no convergence"):
                await board.current()
            failing[0] = False
            computed, _ = await board.current()  # the next request tries again
            assert computed.battles == 0
            failing[0] = True
            await store_vote(engine, "left")
            kept, refreshing = await board.current()
            assert kept is computed and refreshing  # the old standings, and a retry is due
            await board.close()
        finally:
            await engine.dispose()

    asyncio.run(run())
