"""ArenaModels keeps at most `capacity` models loaded, evicts the least recently used one that no battle is
using, stops what it evicts before loading the next, and frees the place of a model that failed to load."""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

from llm_feedback_loop.arena.contenders import ArenaModels
from llm_feedback_loop.models.loader import ModelLoadError
from llm_feedback_loop.serving.slot import ServedModel
from llm_feedback_loop.storage.engine import create_engine
from llm_feedback_loop.storage.tables import ModelVersion


class FakeEngine:
    def __init__(self, models: FakeModels, version_id: int) -> None:
        self.models, self.version_id, self.stopped = models, version_id, False

    def stop(self) -> None:  # called on a thread, as the real engine's is
        with self.models.lock:
            assert not self.stopped, "stopped twice"
            self.stopped = True
            self.models.live.discard(self.version_id)


class FakeModels:
    """Starts fake engines and tracks how many are alive at once (started, not yet stopped)."""

    def __init__(self, failing: frozenset[int] = frozenset()) -> None:
        self.lock = threading.Lock()
        self.live: set[int] = set()
        self.peak = 0
        self.starts: list[int] = []
        self.engines: list[FakeEngine] = []
        self.failing = failing

    async def start(self, version: ModelVersion) -> ServedModel:
        await asyncio.sleep(random.uniform(0, 0.003))  # loading takes a while: other battles interleave
        if version.id in self.failing:
            raise ModelLoadError(f"cannot load model {version.name!r}")
        engine = FakeEngine(self, version.id)
        with self.lock:
            assert version.id not in self.live, "loaded twice at once"
            self.live.add(version.id)
            self.peak = max(self.peak, len(self.live))
            self.starts.append(version.id)
            self.engines.append(engine)
        return ServedModel(version.name, version.id, f"/models/{version.name}", engine)  # type: ignore[arg-type]


def versions(count: int) -> list[ModelVersion]:
    return [
        ModelVersion(id=i, name=f"v{i}", source=f"/models/v{i}", method="sft", status="candidate")
        for i in range(1, count + 1)
    ]


def arena_of(fake: FakeModels, capacity: int = 2) -> ArenaModels:
    return ArenaModels(create_engine("sqlite+aiosqlite:///:memory:"), None, capacity=capacity, start=fake.start)


def test_sixteen_versions_never_mean_more_than_two_models() -> None:
    fake, all_versions = FakeModels(), versions(16)

    async def battle(arena: ArenaModels, rng: random.Random) -> None:
        for version in rng.sample(all_versions, 2):  # one answer after the other, as a battle does
            async with arena.use(version) as served:
                assert served.version_id == version.id and not served.engine.stopped  # type: ignore[attr-defined]
                assert len(arena.loaded) <= arena.capacity
                await asyncio.sleep(rng.uniform(0, 0.002))

    async def run() -> ArenaModels:
        arena = arena_of(fake)
        rng = random.Random(7)
        await asyncio.gather(*(battle(arena, random.Random(rng.random())) for _ in range(40)))
        assert len(arena.loaded) <= 2
        await arena.close()
        return arena

    arena = asyncio.run(run())
    assert fake.peak <= 2 and len(fake.starts) > 16  # versions were evicted and loaded again, within the bound
    assert all(engine.stopped for engine in fake.engines) and arena.loaded == []


def test_the_least_recently_used_idle_model_is_evicted_and_stopped_first() -> None:
    fake = FakeModels()
    a, b, c = versions(3)

    async def run() -> None:
        arena = arena_of(fake)
        for version in (a, b, a, c):
            async with arena.use(version):
                pass
        assert arena.loaded == [a.id, c.id]  # b was used least recently
        assert fake.starts == [a.id, b.id, c.id] and fake.live == {a.id, c.id}
        await arena.close()

    asyncio.run(run())
    assert fake.live == set()


def test_a_model_in_use_is_not_evicted_the_next_battle_waits_for_it() -> None:
    fake = FakeModels()
    a, b = versions(2)

    async def run() -> None:
        arena = arena_of(fake, capacity=1)
        order: list[str] = []
        release = asyncio.Event()

        async def long_answer() -> None:
            async with arena.use(a):
                order.append("a answering")
                await release.wait()
                order.append("a done")

        async def other_battle() -> None:
            async with arena.use(b):
                order.append("b answering")

        first = asyncio.create_task(long_answer())
        await asyncio.sleep(0.01)
        second = asyncio.create_task(other_battle())
        await asyncio.sleep(0.02)
        assert order == ["a answering"] and arena.loaded == [a.id]  # b waits: a is answering
        release.set()
        await asyncio.gather(first, second)
        assert order == ["a answering", "a done", "b answering"] and fake.peak == 1
        await arena.close()

    asyncio.run(run())


def test_a_failed_load_reaches_the_battle_and_frees_its_place() -> None:
    fake = FakeModels(failing=frozenset({2}))
    a, broken, c = versions(3)

    async def run() -> None:
        arena = arena_of(fake, capacity=2)
        async with arena.use(a):
            pass
        with pytest.raises(ModelLoadError, match="v2"):
            async with arena.use(broken):
                pass
        assert arena.loaded == [a.id]
        async with arena.use(c):
            pass
        assert arena.loaded == [a.id, c.id] and fake.live == {a.id, c.id}  # nothing was evicted for the failure
        await arena.close()

    asyncio.run(run())


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        ArenaModels(create_engine("sqlite+aiosqlite:///:memory:"), None, capacity=0)
