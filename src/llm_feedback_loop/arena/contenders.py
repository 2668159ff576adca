"""Which model versions meet in the arena, and the models loaded to answer for them."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from llm_feedback_loop.models.registry import RegistryError, active_version, find_version, list_versions
from llm_feedback_loop.serving.slot import ModelSlot, ServedModel
from llm_feedback_loop.storage.tables import ModelVersion


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


class ArenaModels:
    """One loaded model per version that has answered in the arena (loaded on first use)."""

    def __init__(self, database: AsyncEngine, base_model: str | None, device: str = "auto") -> None:
        self._database = database
        self._base_model = base_model
        self._device = device
        self._slots: dict[int, ModelSlot] = {}
        self._lock = asyncio.Lock()

    async def served(self, version: ModelVersion) -> ServedModel:
        async with self._lock:
            slot = self._slots.get(version.id)
            if slot is None:
                slot = self._slots[version.id] = ModelSlot(self._database, self._base_model, device=self._device)
        return await slot.switch(str(version.id))

    async def close(self) -> None:
        for slot in self._slots.values():
            await slot.close()
        self._slots.clear()
