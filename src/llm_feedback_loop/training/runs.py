"""The lineage of training: a row per run in `training_runs`, and the candidate version each run registers.

A run goes queued (API) → running → completed | failed | interrupted. `interrupted` runs keep their last
checkpoint: `llmfl train --resume` continues them in the same row.

The runs queued by the API are the service's queue: a queued row without a pid waits for a free slot; the
scheduler (training/scheduler.py) claims it by writing its own pid there, then the pid of the process it starts.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.models.loader import DEFAULT_MODEL_NAME, DEFAULT_SOURCE, ModelLoadError, run_model
from llm_feedback_loop.models.registry import (
    RegistryError,
    add_version,
    default_name,
    ensure_active_version,
    find_version,
    unique_name,
)
from llm_feedback_loop.models.run_folder import CONFIG_FILE
from llm_feedback_loop.storage.tables import ModelVersion, TrainingRun, utc_now
from llm_feedback_loop.training.config import TrainConfig
from llm_feedback_loop.training.methods import makes_reward_model, method_of


class RunStatus(StrEnum):
    """Where a run is: the `status` column of `training_runs` (stored as these strings)."""

    QUEUED = "queued"  # waiting for a slot (API), or for its process to start
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped with a checkpoint (or while queued): resumable


RUN_STATUSES = tuple(RunStatus)
UNFINISHED = (RunStatus.QUEUED, RunStatus.RUNNING)
RESUMABLE = (RunStatus.INTERRUPTED, RunStatus.FAILED, RunStatus.RUNNING)


class RunError(ValueError):
    """A run request that cannot be carried out; the message says why."""


async def parent_of(session: AsyncSession, ref: str | None, base_model: str | None) -> tuple[ModelVersion | None, str]:
    """(the parent version, or None for an unregistered hub id or folder; the source to load).

    No ref: the active version (the base model, registered on first use). An earlier run's output folder
    stands for what it trained (`run_folder_model`)."""
    if ref is None:
        version = await ensure_active_version(
            session, base_model or DEFAULT_SOURCE, None if base_model else DEFAULT_MODEL_NAME
        )
        return version, version.source
    version = await find_version(session, ref)
    if version is None:
        version, source = await run_folder_model(session, ref)
        if version is None:
            return None, source
    if makes_reward_model(version.method):
        raise RegistryError(f"{version.name} is a reward model; train from a chat model version")
    return version, version.source


async def run_folder_model(session: AsyncSession, ref: str) -> tuple[ModelVersion | None, str]:
    """What `ref` stands for when it is a run's output folder (`--output-dir` of an earlier `llmfl train`): the
    version that run registered, else its `model/` folder. Without this the loader was handed the run folder
    itself and failed on its tokenizer (a message about sentencepiece). Anything else is returned as it is."""
    folder = Path(ref).expanduser()
    if not (folder / CONFIG_FILE).is_file() or (folder / "config.json").is_file():
        return None, ref
    run = await run_in_folder(session, folder.resolve())
    if run is not None and run.output_version_id is not None:
        version = await session.get(ModelVersion, run.output_version_id)
        if version is not None:
            return version, version.source
    which = f"run {run.id}'s folder ({run.status})" if run is not None else "a training run's folder"
    try:  # its model/ folder, or a message saying what to pass instead (the loader's, for every command)
        return None, str(run_model(folder, which).resolve())
    except ModelLoadError as error:
        raise RegistryError(str(error)) from None


async def create_run(
    session: AsyncSession,
    config: TrainConfig,
    output_dir: Path,
    *,
    status: RunStatus = RunStatus.RUNNING,
    parent: ModelVersion | None = None,
    base_source: str | None = None,
    dataset: dict[str, Any] | None = None,
) -> TrainingRun:
    now = utc_now()
    run = TrainingRun(
        method=config.method,
        status=status,
        # A queued run keeps the settings its client chose, so that when it starts its defaults are decided
        # as for `llmfl train` (the small-data recipe goes by the data); its start stores them all.
        config=config.model_dump(mode="json", exclude_unset=status == RunStatus.QUEUED),
        dataset=dataset,
        parent_version_id=parent.id if parent else None,
        base_source=base_source,
        output_dir=str(output_dir),
        started_at=now if status == RunStatus.RUNNING else None,
        pid=os.getpid() if status == RunStatus.RUNNING else None,
        host=socket.gethostname(),
    )
    session.add(run)
    await session.commit()
    return run


async def resumable_run(session: AsyncSession, output_dir: Path) -> TrainingRun | None:
    """The newest run that wrote to `output_dir` and did not complete."""
    return await session.scalar(
        select(TrainingRun)
        .where(TrainingRun.output_dir == str(output_dir), TrainingRun.status.in_(RESUMABLE))
        .order_by(TrainingRun.id.desc())
    )


async def latest_interrupted(session: AsyncSession) -> TrainingRun | None:
    return await session.scalar(
        select(TrainingRun).where(TrainingRun.status == RunStatus.INTERRUPTED).order_by(TrainingRun.id.desc())
    )


async def mark_running(
    session: AsyncSession,
    run: TrainingRun,
    config: TrainConfig,
    *,
    parent: ModelVersion | None,
    base_source: str | None,
    dataset: dict[str, Any] | None,
) -> TrainingRun:
    run.status = RunStatus.RUNNING
    run.config = config.model_dump(mode="json")
    run.parent_version_id = parent.id if parent else None
    run.base_source = base_source
    run.dataset = dataset
    run.error = None
    run.started_at = run.started_at or utc_now()
    run.finished_at = None
    run.pid = os.getpid()
    run.host = socket.gethostname()
    await session.commit()
    return run


async def finish_run(
    session: AsyncSession,
    run_id: int,
    status: RunStatus,
    *,
    metrics: dict[str, Any] | None = None,
    error: str | None = None,
) -> TrainingRun:
    run = await session.get(TrainingRun, run_id)
    if run is None:
        raise RunError(f"training run {run_id} no longer exists")
    run.status = status
    run.metrics = metrics if metrics is not None else run.metrics
    run.error = error
    run.finished_at = utc_now()
    run.pid = None
    await session.commit()
    return run


async def register_output(
    session: AsyncSession, run_id: int, model_dir: Path, metrics: dict[str, Any] | None
) -> ModelVersion:
    """Register a run's model as a `candidate` version whose parent is the run's parent. Called before the
    run is marked completed, so a completed run always shows its output version."""
    run = await session.get(TrainingRun, run_id)
    if run is None:
        raise RunError(f"training run {run_id} no longer exists")
    config = TrainConfig(**run.config)
    parent = await session.get(ModelVersion, run.parent_version_id) if run.parent_version_id else None
    stem = parent.name if parent else default_name(run.base_source or "model")
    name = config.name or await unique_name(session, f"{stem}-{run.method}-run{run.id}")
    version = await add_version(
        session,
        str(model_dir.resolve()),
        name=name,
        method=run.method,
        parent=parent,
        description=config.description,
        metadata={
            "run_id": run.id,
            "adapter": config.lora and not config.merge,
            "kind": method_of(run.method).head.model_kind,
            "dataset": {key: (run.dataset or {}).get(key) for key in ("path", "files", "rows")},
            "metrics": metrics,
        },
    )
    run.output_version_id = version.id
    await session.commit()
    return version


def process_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def settle_orphans(session: AsyncSession) -> None:
    """Runs of this machine still marked queued/running whose process is gone (killed, machine restarted)
    become failed. Other machines' runs (a shared PostgreSQL) are theirs to judge; a queued run without a
    pid is being launched."""
    orphans = await session.scalars(
        select(TrainingRun).where(TrainingRun.status.in_(UNFINISHED), TrainingRun.host == socket.gethostname())
    )
    changed = False
    for run in orphans:
        if run.status == RunStatus.QUEUED and run.pid is None:
            continue
        if not process_alive(run.pid):
            run.status = RunStatus.FAILED
            run.error = run.error or "the training process ended without reporting (killed, or the machine restarted)"
            run.finished_at = run.finished_at or utc_now()
            run.pid = None
            changed = True
    if changed:
        await session.commit()


async def run_in_folder(session: AsyncSession, output_dir: Path) -> TrainingRun | None:
    """Any run, finished or not, that writes (or wrote, or will write) to `output_dir`."""
    return await session.scalar(
        select(TrainingRun).where(TrainingRun.output_dir == str(output_dir)).order_by(TrainingRun.id.desc())
    )


async def waiting_runs(session: AsyncSession, limit: int) -> list[TrainingRun]:
    """The oldest queued runs of this machine that no process has claimed yet."""
    return list(
        await session.scalars(
            select(TrainingRun)
            .where(
                TrainingRun.status == RunStatus.QUEUED,
                TrainingRun.pid.is_(None),
                TrainingRun.host == socket.gethostname(),
            )
            .order_by(TrainingRun.id)
            .limit(limit)
        )
    )


async def claim_run(session: AsyncSession, run_id: int) -> bool:
    """Mark a waiting run as being started by this process. One UPDATE: of two services sharing the database,
    only one wins a run (and a stop that came first wins over both)."""
    result = await session.execute(
        update(TrainingRun)
        .where(TrainingRun.id == run_id, TrainingRun.status == RunStatus.QUEUED, TrainingRun.pid.is_(None))
        .values(pid=os.getpid(), updated_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


async def release_stale_claims(session: AsyncSession) -> None:
    """Queued runs claimed by a process with this service's pid, left by an earlier service that stopped between
    claiming and starting them (in a container every start has the same pid), wait again."""
    await session.execute(
        update(TrainingRun)
        .where(
            TrainingRun.status == RunStatus.QUEUED,
            TrainingRun.pid == os.getpid(),
            TrainingRun.host == socket.gethostname(),
        )
        .values(pid=None)
        .execution_options(synchronize_session=False)
    )
    await session.commit()


async def cancel_waiting(session: AsyncSession, run_id: int, reason: str) -> bool:
    """Stop a queued run that no process has claimed: it becomes interrupted without ever starting (a resumed
    run keeps its checkpoint, so it can be resumed again). False if a process claimed it first."""
    result = await session.execute(
        update(TrainingRun)
        .where(TrainingRun.id == run_id, TrainingRun.status == RunStatus.QUEUED, TrainingRun.pid.is_(None))
        .values(status=RunStatus.INTERRUPTED, error=reason, finished_at=utc_now(), updated_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


async def settle_exited(session: AsyncSession, run_id: int, pid: int, status: RunStatus, error: str) -> bool:
    """A run whose process (`pid`) exited without recording how it ended gets `status` and `error`. A run that
    reported (completed, failed, interrupted), or that another process has taken over, is left as it is."""
    run = await session.get(TrainingRun, run_id, populate_existing=True)
    if run is None or run.status not in UNFINISHED or run.pid not in (pid, os.getpid()):
        return False
    run.status, run.error, run.finished_at, run.pid = status, error, utc_now(), None
    await session.commit()
    return True


async def list_runs(session: AsyncSession, limit: int = 50, offset: int = 0) -> list[TrainingRun]:
    await settle_orphans(session)
    return list(await session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit).offset(offset)))


async def get_run(session: AsyncSession, run_id: int) -> TrainingRun | None:
    await settle_orphans(session)
    return await session.get(TrainingRun, run_id)


def describe_run(run: TrainingRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "method": run.method,
        "status": run.status,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "parent_version_id": run.parent_version_id,
        "base_source": run.base_source,
        "output_dir": run.output_dir,
        "output_version_id": run.output_version_id,
        "config": run.config,
        "dataset": run.dataset,
        "metrics": run.metrics,
        "error": run.error,
    }


@dataclass
class StartedRun:
    """A run recorded as running: its id, the settings pinned to its parent, and what to load."""

    run_id: int
    config: TrainConfig
    parent_name: str | None
    source: str


async def start_run(
    session: AsyncSession,
    config: TrainConfig,
    output_dir: Path,
    dataset: dict[str, Any],
    *,
    run_id: int | None,
    resume: bool,
    base_model: str | None,
) -> StartedRun:
    """Record the run as running: a new row, or the queued (`run_id`) or interrupted (`resume`) one it continues.
    The settings are pinned to the parent it resolved to (a resumed run keeps its parent even if another version
    is active). RegistryError for a taken --name or a parent that cannot be trained from."""
    if config.name and await find_version(session, config.name) is not None and not resume:
        raise RegistryError(f"a model version named {config.name!r} exists already; choose another --name")
    parent, source = await parent_of(session, config.model, base_model)
    pinned = config.model_copy(update={"model": str(parent.id) if parent else source})
    existing = None
    if run_id is not None:
        existing = await session.get(TrainingRun, run_id)
    elif resume:
        existing = await resumable_run(session, output_dir)
    if existing is not None:
        run = await mark_running(session, existing, pinned, parent=parent, base_source=source, dataset=dataset)
    else:
        run = await create_run(session, pinned, output_dir, parent=parent, base_source=source, dataset=dataset)
    return StartedRun(run.id, pinned, parent.name if parent else None, source)
