"""`/v1/runs`: start training from the API (a background process), poll it, stop it, resume it.

POST /v1/runs {"method": "dpo", "from_db": true, "lora": true}  → 202 {"id": 7, "status": "queued", ...}
GET  /v1/runs/7                                                 → status, config, metrics, error
GET  /v1/runs/7/metrics   GET /v1/runs/7/log   POST /v1/runs/7/stop   POST /v1/runs/7/resume

A run from the API stays inside the service's folders: it reads an export under EXPORTS_DIR, starts from a
registered model version, writes under CHECKPOINT_DIR, and waits in a queue for one of MAX_CONCURRENT_RUNS
slots (training/scheduler.py). `llmfl train` on the command line keeps every choice for local users.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import PlainTextResponse

from llm_feedback_loop.api.deps import SessionDep, StateDep, require_admin, require_read
from llm_feedback_loop.api.routes.feedback import Offset
from llm_feedback_loop.logging_redaction import redact
from llm_feedback_loop.models.registry import find_version
from llm_feedback_loop.models.run_folder import METRICS_FILE, last_checkpoint
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.json_values import INT_MAX
from llm_feedback_loop.storage.tables import TrainingRun
from llm_feedback_loop.training.config import TrainConfig
from llm_feedback_loop.training.data import DatasetError, jsonl_split_files, load_training_data
from llm_feedback_loop.training.methods import makes_reward_model
from llm_feedback_loop.training.runs import (
    UNFINISHED,
    RunStatus,
    cancel_waiting,
    create_run,
    describe_run,
    get_run,
    list_runs,
    run_in_folder,
)
from llm_feedback_loop.training.scheduler import log_tail


@asynccontextmanager
async def scheduled_runs(app: FastAPI) -> AsyncIterator[None]:
    """Start queued runs while the service is up. FastAPI nests an included router's lifespan inside the app's,
    so the service state exists by now and outlives the scheduler."""
    state = app.state.service
    async with state.jobs.scheduling(state.sessions, state.settings):
        yield


RunId = Annotated[int, PathParam(ge=1, le=INT_MAX, description="The run's id.")]

router = APIRouter(prefix="/v1/runs", tags=["training"], lifespan=scheduled_runs)

PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
DATA_OUTSIDE = (
    "data: give an export inside the service's exports folder (EXPORTS_DIR): a name such as dpo.jsonl, or a path "
    "inside that folder; other paths are refused. Or train on the stored feedback with from_db: true"
)


async def existing_run(session: SessionDep, run_id: RunId) -> TrainingRun:
    run = await get_run(session, run_id)
    if run is None:
        raise HTTPException(status_code=404, detail=f"no training run {run_id}")
    return run


def export_path(settings: Settings, data: str) -> Path:
    """The export `data` names, resolved inside EXPORTS_DIR (a relative name is taken from there). Every file
    the loader may read (the split files and manifest of a JSONL export, everything in a datasets folder) must
    lie inside too, symlinks followed; otherwise one answer says so, whatever is outside (nothing about files
    there, not even whether they exist). The process reads the files later: whoever may change this folder's
    symlinks in between is a local user, who could run `llmfl train` anyway."""
    root = settings.exports_dir.resolve()
    try:
        path = (root / data).resolve()  # an absolute `data` replaces root
        if not path.is_relative_to(root):
            raise HTTPException(status_code=422, detail=DATA_OUTSIDE)
        if path.is_dir():
            read = list(path.rglob("*"))
        else:
            stem = path.name.removesuffix(".jsonl").removesuffix(".train").removesuffix(".test")
            read = [*jsonl_split_files(path).values(), path.with_name(f"{stem}.manifest.json")]
        if not all(file.resolve().is_relative_to(root) for file in read):
            raise HTTPException(status_code=422, detail=DATA_OUTSIDE)
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a name too long, a symlink loop
        raise HTTPException(status_code=422, detail=DATA_OUTSIDE) from None
    return path


def plainly_inside(folder: Path, parent: Path) -> bool:
    """Whether `folder` is a direct child of `parent` once symlinks are followed (it need not exist)."""
    try:
        return folder.resolve().parent == parent
    except (OSError, RuntimeError):  # a symlink loop
        return False


async def output_folder(session: SessionDep, settings: Settings, config: TrainConfig) -> Path:
    """CHECKPOINT_DIR/METHOD-TIMESTAMP, or CHECKPOINT_DIR/NAME for a plain `output_dir` name; a folder that
    holds (or will hold) another run is refused."""
    checkpoints = settings.checkpoint_dir.resolve()
    if config.output_dir is None:
        return checkpoints / f"{config.method}-{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}"
    output_dir = checkpoints / config.output_dir
    if not PLAIN_NAME.fullmatch(config.output_dir) or not plainly_inside(output_dir, checkpoints):
        raise HTTPException(
            status_code=422,
            detail="output_dir: give a plain folder name (letters, digits, '.', '_', '-'), which the service creates "
            "in its checkpoint folder (CHECKPOINT_DIR), or leave it out; paths are refused",
        )
    if output_dir.exists() or await run_in_folder(session, output_dir) is not None:
        raise HTTPException(
            status_code=409, detail=f"output_dir: {config.output_dir!r} holds another run; choose another name"
        )
    return output_dir


async def registered_reward(session: SessionDep, spec: str) -> str:
    """An online run's reward, from a client: a registered reward model version only (pinned by id). A Python
    function (fn:...) or a folder is for the command line: the service never imports code, or reads a folder,
    that a client names."""
    version = None if spec.startswith("fn:") else await find_version(session, spec)
    if version is None or not makes_reward_model(version.method):
        raise HTTPException(
            status_code=422,
            detail=f"reward: {spec[:200]!r} is not a registered reward model version; the service takes reward model "
            "versions (`llmfl train reward`) by id or name; Python functions are for `llmfl train --reward fn:...`",
        )
    return str(version.id)


@router.post("", status_code=202, dependencies=[Depends(require_admin)])
async def queue_run(config: TrainConfig, state: StateDep, session: SessionDep) -> dict[str, Any]:
    """Queue a training run; it starts when one of MAX_CONCURRENT_RUNS slots is free. Poll `GET /v1/runs/{id}`.

    `data`: an export under EXPORTS_DIR (relative names are taken from there), or `from_db: true`.
    `model`: a registered model version, by id or name (default: the active version); folders and hub ids are
    for `llmfl models add`. `output_dir`: a plain folder name created in CHECKPOINT_DIR (default METHOD-TIMESTAMP).
    """
    settings = state.settings
    if config.data is not None:
        data = await asyncio.to_thread(export_path, settings, config.data)  # walks a datasets folder
        try:  # checked now, so a bad dataset is answered here rather than found in a failed run
            await asyncio.to_thread(load_training_data, data, config.method)
        except DatasetError as error:
            raise HTTPException(status_code=422, detail=f"data: {error}") from None
        config = config.model_copy(update={"data": str(data)})
    if config.model is not None:
        version = await find_version(session, config.model)
        if version is None:
            raise HTTPException(
                status_code=422,
                detail=f"model: no registered model version {config.model!r}; give a version's id or name "
                "(GET /v1/model-versions). Folders and hub ids are registered first, with `llmfl models add`",
            )
        if makes_reward_model(version.method):
            raise HTTPException(status_code=422, detail=f"model: {version.name} is a reward model; give a chat model")
        config = config.model_copy(update={"model": str(version.id)})  # the version checked here, not a later one
    if getattr(config, "reward", None):
        config = config.model_copy(
            update={"reward": [await registered_reward(session, spec) for spec in config.reward]}
        )
    if config.name is not None and await find_version(session, config.name) is not None:
        raise HTTPException(status_code=422, detail=f"name: a model version named {config.name!r} exists already")
    output_dir = await output_folder(session, settings, config)
    config = config.model_copy(update={"output_dir": str(output_dir)})
    run = await create_run(session, config, output_dir, status=RunStatus.QUEUED)
    state.jobs.notify()
    return describe_run(run)


@router.get("", dependencies=[Depends(require_read)])
async def runs(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Training runs, newest first."""
    return [describe_run(run) for run in await list_runs(session, limit, offset)]


@router.get("/{run_id}", dependencies=[Depends(require_read)])
async def run_detail(run_id: RunId, session: SessionDep) -> dict[str, Any]:
    return describe_run(await existing_run(session, run_id))


@router.get("/{run_id}/metrics", dependencies=[Depends(require_read)])
async def run_metrics(run_id: RunId, session: SessionDep) -> list[dict[str, Any]]:
    """Every logged entry of the run (loss, learning rate, epoch, step), oldest first; a line that is not a
    whole entry (a run killed while writing it) is left out."""
    run = await existing_run(session, run_id)
    return await asyncio.to_thread(logged_entries, Path(run.output_dir) / METRICS_FILE)


def logged_entries(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


@router.get("/{run_id}/log", response_class=PlainTextResponse, dependencies=[Depends(require_read)])
async def run_log(
    run_id: RunId, session: SessionDep, lines: Annotated[int, Query(ge=1, le=5000)] = 200
) -> PlainTextResponse:
    """The last `lines` lines of the run's log, credentials in it (a traceback's URL, a key) redacted: the
    log is the training process's own output, not log records that went through the redacting filter."""
    run = await existing_run(session, run_id)
    return PlainTextResponse(await asyncio.to_thread(shown_log, Path(run.output_dir), lines))


def shown_log(output_dir: Path, lines: int) -> str:
    return redact(log_tail(output_dir, lines))


@router.post("/{run_id}/stop", status_code=202, dependencies=[Depends(require_admin)])
async def stop_run(run_id: RunId, session: SessionDep, state: StateDep) -> dict[str, Any]:
    """Stop after the current step with a checkpoint (status becomes `interrupted`, resumable). A run still
    waiting in the queue becomes `interrupted` without starting."""
    run = await existing_run(session, run_id)
    if run.status == RunStatus.QUEUED and run.pid is None:
        if await cancel_waiting(session, run.id, "stopped while queued"):
            await session.refresh(run)
            return describe_run(run)
        await session.refresh(run)  # the scheduler claimed it in the meantime
    if run.status not in UNFINISHED or not state.jobs.stop(run):
        queued = run.status == RunStatus.QUEUED
        state_now = "starting; stop it again in a moment" if queued else f"{run.status}, not running"
        raise HTTPException(status_code=409, detail=f"run {run_id} is {state_now}")
    return describe_run(run)


@router.post("/{run_id}/resume", status_code=202, dependencies=[Depends(require_admin)])
async def resume_run(run_id: RunId, session: SessionDep, state: StateDep) -> dict[str, Any]:
    """Continue an interrupted (or failed) run from its last checkpoint, in the same run, when a slot is free."""
    run = await existing_run(session, run_id)
    if run.status not in (RunStatus.INTERRUPTED, RunStatus.FAILED):
        raise HTTPException(status_code=409, detail=f"run {run_id} is {run.status}; only interrupted runs resume")
    if last_checkpoint(Path(run.output_dir)) is None:
        raise HTTPException(status_code=409, detail=f"run {run_id} has no checkpoint to resume from")
    run.status, run.error, run.finished_at, run.pid = RunStatus.QUEUED, None, None, None
    run.host = socket.gethostname()  # this machine found the checkpoint, so this machine's scheduler resumes it
    await session.commit()
    state.jobs.notify()
    return describe_run(run)
