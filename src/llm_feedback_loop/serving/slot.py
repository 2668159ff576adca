"""The model a process serves right now, and switching it without dropping a request.

A switch loads the new version beside the old one, points new requests at it, and stops the old engine
once no request holds it any more. A request holds the model it was handed by a `Lease`, from the moment it
is handed (before the prompt is even tokenized) to its last token: counting only the generations in flight
left a gap in which a request could be handed the old model, the switch stop it, and the request then wait
on a stopped engine for ever.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from llm_feedback_loop.models.loader import DEFAULT_MODEL_NAME, DEFAULT_SOURCE, load_model
from llm_feedback_loop.models.registry import default_name, ensure_active_version, find_version
from llm_feedback_loop.serving.engine import GenerationEngine, in_own_thread
from llm_feedback_loop.serving.remote import RemoteEngine

log = logging.getLogger(__name__)


@dataclass
class ServedModel:
    name: str
    version_id: int | None
    source: str
    engine: GenerationEngine | RemoteEngine
    holders: weakref.WeakSet[Lease] = field(default_factory=weakref.WeakSet, repr=False, compare=False)


class Lease:
    """A request's hold on the model it was handed (`ModelSlot.lease`): a replaced model is stopped only once
    no lease on it is left. Released by `release` (or leaving its `with`), or when the request that held it is
    gone (the lease is garbage-collected: a stream whose response was never started still lets go)."""

    def __init__(self, served: ServedModel) -> None:
        self.served = served
        served.holders.add(self)

    def release(self) -> None:
        self.served.holders.discard(self)

    def share(self) -> Lease:
        """Another lease on the same model, for whoever carries the request on (a response's stream)."""
        return Lease(self.served)

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()


@dataclass(frozen=True)
class ModelChoice:
    name: str
    version_id: int | None
    source: str | None


class UnknownVersion(ValueError):
    """A switch named no registered version: what is served over HTTP must have been registered first."""


async def choose_model(
    database: AsyncEngine, ref: str | None, base_model: str | None, registered_only: bool = False
) -> ModelChoice:
    """What `ref` names: a registered version (id or name), else (unless `registered_only`) a hub id or folder;
    no ref: the active version (the base model, registered on first use)."""
    async with AsyncSession(database, expire_on_commit=False) as session:
        if ref is None:
            version = await ensure_active_version(
                session, base_model or DEFAULT_SOURCE, None if base_model else DEFAULT_MODEL_NAME
            )
        else:
            version = await find_version(session, ref)
            if version is None:
                if registered_only:
                    raise UnknownVersion(
                        f"model: {ref!r} is not a registered version; name one by id or name (llmfl models list), "
                        "or register a folder or hub id first (llmfl models add PATH --name NAME)"
                    )
                return ModelChoice(default_name(ref), None, ref)
    return ModelChoice(version.name, version.id, version.source)


def start_model(
    choice: ModelChoice,
    device: str = "auto",
    dtype: str = "auto",
    engine: str = "transformers",
    pack_linear: bool = True,
) -> ServedModel:
    """Load a model and start its engine (blocking; raises ModelLoadError with a readable message): in this
    process (`transformers`; `pack_linear`: on a CPU its linear layers multiply prepacked, MODEL_PACKED_LINEAR),
    or in a vLLM server of its own (`vllm`, serving/vllm.py)."""
    if engine == "vllm":
        from llm_feedback_loop.serving.vllm import start_vllm

        log.warning("starting vLLM for model %s (%s)", choice.name, choice.source)
        remote, _ = start_vllm(choice.source or DEFAULT_SOURCE, choice.name)
        return ServedModel(choice.name, choice.version_id, choice.source or DEFAULT_SOURCE, remote)  # type: ignore[arg-type]
    log.warning("loading model %s (%s)", choice.name, choice.source)
    loaded = load_model(choice.source, device=device, dtype=dtype)
    engine = GenerationEngine(loaded, pack_linear=pack_linear)
    engine.start()
    return ServedModel(choice.name, choice.version_id, loaded.source, engine)


class ModelSlot:
    """Holds the served model; loads lazily on first use; `switch` swaps it without dropping requests."""

    def __init__(
        self,
        database: AsyncEngine,
        base_model: str | None,
        device: str = "auto",
        dtype: str = "auto",
        current: ServedModel | None = None,
        engine: str = "transformers",
        pack_linear: bool = True,
    ) -> None:
        self._engine = engine
        self._pack_linear = pack_linear
        self._database = database
        self._base_model = base_model
        self._device = device
        self._dtype = dtype
        self._current = current
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def loaded(self) -> ServedModel | None:
        return self._current

    async def current(self) -> ServedModel:
        if self._current is None:
            async with self._lock:
                if self._current is None:
                    self._current = await self._load(await choose_model(self._database, None, self._base_model))
        return self._current

    async def lease(self) -> Lease:
        """The served model, held until the lease is released (see the module docstring)."""
        return Lease(await self.current())  # no await between reading the model and holding it

    async def switch(self, ref: str | None = None, registered_only: bool = True) -> ServedModel:
        """Serve `ref` (default: the active version) from now on. Only a registered version unless
        `registered_only` is False (the operator's `--model` at start may be a folder or hub id): a remote
        caller must not make the server load, and everyone be served, an arbitrary folder or hub repository."""
        choice = await choose_model(self._database, ref, self._base_model, registered_only)
        async with self._lock:
            if self._current is not None and self._current.name == choice.name:
                return self._current
            new = await self._load(choice)
            old, self._current = self._current, new
        if old is not None:
            task = asyncio.create_task(self._retire(old))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return new

    async def active_changed(self) -> bool:
        """Whether the registry's active version differs from the one served."""
        if self._current is None:
            return False
        choice = await choose_model(self._database, None, self._base_model)
        return choice.version_id != self._current.version_id

    async def _load(self, choice: ModelChoice) -> ServedModel:
        return await in_own_thread(start_model, choice, self._device, self._dtype, self._engine, self._pack_linear)

    async def _retire(self, old: ServedModel) -> None:
        while old.holders or old.engine.in_flight > 0:  # let every request on the old model finish
            await asyncio.sleep(0.05)
        await in_own_thread(old.engine.stop)
        log.warning("stopped model %s", old.name)

    async def close(self) -> None:
        for task in list(self._retiring):
            await task
        if self._current is not None:
            await in_own_thread(self._current.engine.stop)
            self._current = None
