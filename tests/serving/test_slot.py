"""ModelSlot stops a replaced model only once no request holds it: a request handed the old model before a
switch (and still tokenizing its prompt) is served by it, never left waiting on a stopped engine."""

from __future__ import annotations

import asyncio
import gc

import pytest

from llm_feedback_loop.serving import slot as slot_module
from llm_feedback_loop.serving.slot import ModelChoice, ModelSlot, ServedModel


class FakeEngine:
    def __init__(self) -> None:
        self.in_flight = 0
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


def served(name: str) -> ServedModel:
    return ServedModel(name, None, f"/models/{name}", FakeEngine())  # type: ignore[arg-type]


@pytest.fixture
def two_versions(monkeypatch: pytest.MonkeyPatch) -> tuple[ModelSlot, ServedModel, ServedModel]:
    old, new = served("old"), served("new")

    async def choose(database: object, ref: str | None, base: str | None, registered_only: bool = False) -> ModelChoice:
        return ModelChoice("new", None, "/models/new")

    async def load(choice: ModelChoice) -> ServedModel:
        return new

    monkeypatch.setattr(slot_module, "choose_model", choose)
    slot = ModelSlot(None, None, current=old)  # type: ignore[arg-type]
    monkeypatch.setattr(slot, "_load", load)
    return slot, old, new


async def settle() -> None:
    """Let the retiring task look a few times (it polls every 0.05 s)."""
    await asyncio.sleep(0.2)


def test_a_held_model_is_stopped_only_after_its_lease_is_released(
    two_versions: tuple[ModelSlot, ServedModel, ServedModel],
) -> None:
    slot, old, new = two_versions

    async def scenario() -> None:
        lease = await slot.lease()  # handed the old model; no generation in flight yet
        assert lease.served is old
        assert await slot.switch(None) is new
        await settle()
        assert not old.engine.stopped  # type: ignore[union-attr]
        assert (await slot.lease()).served is new  # new requests go to the new model meanwhile
        shared = lease.share()  # a response's stream carries the request on
        lease.release()
        await settle()
        assert not old.engine.stopped  # type: ignore[union-attr]
        shared.release()
        await settle()
        assert old.engine.stopped  # type: ignore[union-attr]
        assert not new.engine.stopped  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_a_lease_dropped_without_release_lets_the_model_go(
    two_versions: tuple[ModelSlot, ServedModel, ServedModel],
) -> None:
    slot, old, _ = two_versions

    async def stream(held: object) -> object:  # a response's stream that was never started
        yield held

    async def scenario() -> None:
        never_started = stream((await slot.lease()).share())
        await slot.switch(None)
        await settle()
        assert not old.engine.stopped  # type: ignore[union-attr]
        del never_started
        gc.collect()
        await settle()
        assert old.engine.stopped  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_generations_in_flight_also_hold_the_model(two_versions: tuple[ModelSlot, ServedModel, ServedModel]) -> None:
    slot, old, _ = two_versions

    async def scenario() -> None:
        old.engine.in_flight = 1  # type: ignore[union-attr]
        await slot.switch(None)
        await settle()
        assert not old.engine.stopped  # type: ignore[union-attr]
        old.engine.in_flight = 0  # type: ignore[union-attr]
        await settle()
        assert old.engine.stopped  # type: ignore[union-attr]

    asyncio.run(scenario())
