"""Which model versions meet in the arena, and the models loaded to answer for them.

Every version that ever answered used to stay loaded (16 versions: 16 models in memory). `ArenaModels`
keeps at most `capacity` loaded, the least recently used evicted, and counts a model as loaded from the
start of its load until its engine has stopped, so the bound holds for memory, not only for the table.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from llm_feedback_loop.arena.leaderboard import ArenaLeaderboard
from llm_feedback_loop.models.registry import RegistryError, active_version, find_version, list_versions
from llm_feedback_loop.serving.engine import in_own_thread
from llm_feedback_loop.serving.slot import ServedModel, choose_model, start_model
from llm_feedback_loop.storage.tables import ModelVersion

log = logging.getLogger(__name__)

Starter = Callable[[ModelVersion], Awaitable[ServedModel]]  # loads a version's model, started


async def pick_contenders(session: AsyncSession, wanted: list[str] | None) -> tuple[ModelVersion, ModelVersion]:
    """The two versions named, or the active version against the newest other chat version."""
    if wanted:
        found = [await find_version(session, ref) for ref in wanted]
        missing = [ref for ref, version in zip(wanted, found, strict=True) if version is None]
        if missing:
            raise RegistryError(f"no model version {missing[0]!r}")
        first, second = found
        assert first is not None and second is not None
        if first.id == second.id:
            raise RegistryError("the arena needs two different model versions")
        if "reward" in (first.method, second.method):
            raise RegistryError("a reward model scores answers; it cannot answer in the arena")
        return first, second
    chat_versions = [v for v in await list_versions(session) if v.method != "reward"]
    active = await active_version(session)
    others = [v for v in reversed(chat_versions) if active is None or v.id != active.id]
    if active is None or not others:
        raise RegistryError(
            "the arena needs two chat model versions: train one (`llmfl train`) or register one (`llmfl models add`)"
        )
    return active, others[0]


@dataclass(eq=False)
class _Loaded:
    version_id: int
    ready: asyncio.Task[ServedModel] | None = None  # the load; its result is the model
    users: int = 0  # battles generating with it now: never evicted while above 0


class ArenaModels:
    """What the arena keeps between requests: the models answering for versions (at most `capacity` loaded,
    least recently used evicted) and the cached leaderboard. `use(version)` lends a model for one answer."""

    def __init__(
        self,
        database: AsyncEngine,
        base_model: str | None,
        device: str = "auto",
        capacity: int = 2,
        start: Starter | None = None,
        pack_linear: bool = True,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity: at least 1 model")
        self._database = database
        self._base_model = base_model
        self._device = device
        self._pack_linear = pack_linear
        self.capacity = capacity
        self._start = start or self._start_engine
        self._models: OrderedDict[int, _Loaded] = OrderedDict()  # least recently used first
        self._changed = asyncio.Condition()  # a model was released or dropped: a waiting battle may go on
        self.leaderboard = ArenaLeaderboard(database)

    @property
    def loaded(self) -> list[int]:
        """The versions (ids) whose models are loaded or loading, least recently used first."""
        return list(self._models)

    @asynccontextmanager
    async def use(self, version: ModelVersion) -> AsyncIterator[ServedModel]:
        """The model of `version`, loaded if need be, kept from eviction until the block ends."""
        entry = await self._acquire(version)
        try:
            assert entry.ready is not None
            yield await asyncio.shield(entry.ready)  # a cancelled request leaves the load to finish for others
        finally:
            async with self._changed:
                entry.users -= 1
                self._changed.notify_all()

    async def _acquire(self, version: ModelVersion) -> _Loaded:
        async with self._changed:
            while True:
                entry = self._models.get(version.id)
                if entry is not None:
                    self._models.move_to_end(version.id)
                    break
                evicted = None
                if len(self._models) >= self.capacity:
                    evicted = next((loaded for loaded in self._models.values() if loaded.users == 0), None)
                    if evicted is None:  # every loaded model is answering: wait for one to be free
                        await self._changed.wait()
                        continue
                    del self._models[evicted.version_id]
                entry = self._models[version.id] = _Loaded(version.id)
                entry.ready = asyncio.create_task(self._load(version, entry, evicted), name=f"arena-load-{version.id}")
                break
            entry.users += 1
            return entry

    async def _load(self, version: ModelVersion, entry: _Loaded, evicted: _Loaded | None) -> ServedModel:
        try:
            if evicted is not None:
                await self._stop(evicted)  # first free its memory: never more than `capacity` models at once
            return await self._start(version)
        except BaseException:
            async with self._changed:  # a failed load holds no place: the next battle tries again
                if self._models.get(version.id) is entry:
                    del self._models[version.id]
                self._changed.notify_all()
            raise

    async def _start_engine(self, version: ModelVersion) -> ServedModel:
        choice = await choose_model(self._database, str(version.id), self._base_model)
        return await in_own_thread(start_model, choice, self._device, "auto", "transformers", self._pack_linear)

    @staticmethod
    async def _stop(entry: _Loaded) -> None:
        assert entry.ready is not None
        try:
            served = await entry.ready
        except Exception:  # it never loaded: nothing to stop (its error went to the battle that asked)
            return
        try:
            await in_own_thread(served.engine.stop)
        except Exception:  # its place is free either way; the engine's threads are daemons
            log.exception("arena: stopping model %s failed", served.name)
            return
        log.warning("arena: stopped model %s", served.name)

    async def close(self) -> None:
        await self.leaderboard.close()
        async with self._changed:
            entries = list(self._models.values())
            self._models.clear()
        for entry in entries:
            await self._stop(entry)
