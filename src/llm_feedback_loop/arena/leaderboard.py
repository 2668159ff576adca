"""The arena leaderboard, computed off the request path and served from memory.

The bootstrap refits the ratings 200 times: with 16 versions that was 8.5 CPU-seconds, once for every
request. Now the standings are computed in a worker thread when the votes have changed (a vote here marks
them stale; a vote stored by another process is noticed by the vote count a request reads), one computation
at a time, and every request in between gets the cached standings. A request waits a moment for a refresh
under way (the usual one takes milliseconds, so a voter sees their vote), then takes what is cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from llm_feedback_loop.arena.ratings import Battle, Standing, leaderboard
from llm_feedback_loop.storage.tables import ArenaBattle, utc_now

log = logging.getLogger(__name__)

SCORES = {"left": 1.0, "right": 0.0, "tie": 0.5}
# A battle counts while its vote's comparison exists (deleting the comparison takes the vote back).
COUNTED = ArenaBattle.comparison_id.is_not(None)

VotesMark = tuple[int, datetime | None]  # (votes counted, the newest vote's time): changes with every vote


class LeaderboardUnavailable(RuntimeError):
    """The standings have never been computed, and computing them failed."""


@dataclass(frozen=True)
class Board:
    standings: list[Standing]
    battles: int
    computed_at: datetime
    mark: VotesMark = field(repr=False)


async def votes_mark(session: AsyncSession) -> VotesMark:
    count, newest = (await session.execute(select(func.count(), func.max(ArenaBattle.voted_at)).where(COUNTED))).one()
    return int(count), newest


async def voted_battles(session: AsyncSession) -> tuple[list[Battle], VotesMark]:
    """Every counted vote as (left version, right version, score of left), and the mark they make."""
    query = (
        select(ArenaBattle.left_version, ArenaBattle.right_version, ArenaBattle.winner, ArenaBattle.voted_at)
        .where(COUNTED)
        .order_by(ArenaBattle.id)
    )
    battles: list[Battle] = []
    newest: datetime | None = None
    for left, right, winner, voted_at in await session.execute(query):
        battles.append((left, right, SCORES.get(winner or "", 0.5)))
        if voted_at is not None and (newest is None or voted_at > newest):
            newest = voted_at
    return battles, (len(battles), newest)


class ArenaLeaderboard:
    """Cached standings of the arena; `recomputations` counts the fits (the tests read it).

    `wait_s`: how long a request waits for a refresh under way before it takes the cached standings.
    """

    def __init__(
        self,
        database: AsyncEngine,
        compute: Callable[[list[Battle]], list[Standing]] = leaderboard,
        wait_s: float = 2.0,
    ) -> None:
        self._database = database
        self._compute = compute
        self._wait_s = wait_s
        self._board: Board | None = None
        self._stale = True
        self._refresh: asyncio.Task[None] | None = None
        self._last_took = 0.0
        self._last_done = 0.0
        self._error: BaseException | None = None
        self.recomputations = 0

    @property
    def refreshing(self) -> bool:
        return self._refresh is not None and not self._refresh.done()

    def mark_stale(self) -> None:
        """A vote was stored or taken back: recompute in the background."""
        self._stale = True
        self._start_refresh()

    async def current(self) -> tuple[Board, bool]:
        """The standings, and whether a newer computation is under way."""
        if self._board is not None and not self._stale:
            async with AsyncSession(self._database) as session:
                if await votes_mark(session) != self._board.mark:  # a vote by another process
                    self._stale = True
        if self._stale:
            self._start_refresh()
        if self._refresh is not None and not self._refresh.done():
            wait = None if self._board is None else self._wait_s  # nothing cached yet: wait for the first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._refresh), timeout=wait)
        if self._board is None:
            raise LeaderboardUnavailable(f"the leaderboard could not be computed: {self._error}")
        return self._board, self.refreshing or self._stale

    def _start_refresh(self) -> None:
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.create_task(self._refresh_while_stale(), name="arena-leaderboard")

    async def _refresh_while_stale(self) -> None:
        while self._stale:
            # At most half a core: after a computation that took t seconds, the next starts t seconds later.
            pause = self._last_done + self._last_took - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            self._stale = False  # votes from here on make it stale again: one more round
            try:
                async with AsyncSession(self._database) as session:
                    battles, mark = await voted_battles(session)
                started = time.monotonic()
                standings = await asyncio.to_thread(self._compute, battles)
            except Exception as error:  # keep what is cached; the next request or vote tries again
                log.exception("arena: computing the leaderboard failed")
                self._error, self._stale = error, True
                return
            self._last_done = time.monotonic()
            self._last_took = self._last_done - started
            self.recomputations += 1
            self._board = Board(standings, len(battles), utc_now(), mark)
            self._error = None

    async def close(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh
