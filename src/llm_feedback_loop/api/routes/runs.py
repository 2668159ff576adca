"""`/v1/runs`: start training from the API (a background process), poll it, stop it, resume it.

POST /v1/runs {"method": "dpo", "from_db": true, "lora": true}  → 202 {"id": 7, "status": "queued", ...}
GET  /v1/runs/7                                                 → status, config, metrics, error
GET  /v1/runs/7/metrics   GET /v1/runs/7/log   POST /v1/runs/7/stop   POST /v1/runs/7/resume
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import PlainTextResponse

from llm_feedback_loop.api.deps import SessionDep, StateDep, require_admin, require_read
from llm_feedback_loop.models.registry import find_version
from llm_feedback_loop.storage.tables import TrainingRun, utc_now
from llm_feedback_loop.training.config import TrainConfig
from llm_feedback_loop.training.data import DatasetError, load_training_data
from llm_feedback_loop.training.jobs import log_tail
from llm_feedback_loop.training.layout import CONFIG_FILE, METRICS_FILE, last_checkpoint
from llm_feedback_loop.training.runs import create_run, describe_run, get_run, list_runs

router = APIRouter(prefix="/v1/runs", tags=["training"])


async def existing_run(session: SessionDep, run_id: int) -> TrainingRun:
    run = await get_run(session, run_id)
    if run is None:
        raise HTTPException(status_code=404, detail=f"no training run {run_id}")
    return run


@router.post("", status_code=202, dependencies=[Depends(require_admin)])
async def start_run(config: TrainConfig, state: StateDep, session: SessionDep) -> dict[str, Any]:
    """Queue a training run and start it in the background; poll `GET /v1/runs/{id}` for its status."""
    if config.data is not None:
        try:  # checked now, so a bad dataset is answered here rather than found in a failed run
            await asyncio.to_thread(load_training_data, config.data, config.method)
        except DatasetError as error:
            raise HTTPException(status_code=422, detail=f"data: {error}") from None
    if config.model is not None and await find_version(session, config.model) is None:
        path = Path(config.model).expanduser()
        if config.model.startswith(("/", ".", "~")) and not path.exists():
            raise HTTPException(status_code=422, detail=f"model: no version or folder {config.model!r}")
    if config.name is not None and await find_version(session, config.name) is not None:
        raise HTTPException(status_code=422, detail=f"name: a model version named {config.name!r} exists already")
    checkpoints = state.settings.checkpoint_dir
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    output_dir = Path(config.output_dir or checkpoints / f"{config.method}-{stamp}").resolve()
    if (output_dir / CONFIG_FILE).exists():
        raise HTTPException(status_code=409, detail=f"output_dir: {output_dir} holds a run already")
    config = config.model_copy(update={"output_dir": str(output_dir)})
    run = await create_run(session, config, output_dir, status="queued")
    await launch(session, state, run, output_dir, resume=False)
    return describe_run(run)


async def launch(session: SessionDep, state: StateDep, run: TrainingRun, output_dir: Path, *, resume: bool) -> None:
    """Start the run's process and record its pid; a process that cannot start fails the run, with the reason."""
    try:
        run.pid = state.jobs.launch(run.id, output_dir, resume=resume)
    except OSError as error:
        run.status, run.error, run.finished_at = "failed", f"could not start the training process: {error}", utc_now()
        await session.commit()
        raise HTTPException(status_code=500, detail=run.error) from None
    await session.commit()


@router.get("", dependencies=[Depends(require_read)])
async def runs(
    session: SessionDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """Training runs, newest first."""
    state.jobs.reap()
    return [describe_run(run) for run in await list_runs(session, limit, offset)]


@router.get("/{run_id}", dependencies=[Depends(require_read)])
async def run_detail(run_id: int, session: SessionDep, state: StateDep) -> dict[str, Any]:
    state.jobs.reap()
    return describe_run(await existing_run(session, run_id))


@router.get("/{run_id}/metrics", dependencies=[Depends(require_read)])
async def run_metrics(run_id: int, session: SessionDep) -> list[dict[str, Any]]:
    """Every logged entry of the run (loss, learning rate, epoch, step), oldest first."""
    run = await existing_run(session, run_id)
    path = Path(run.output_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@router.get("/{run_id}/log", response_class=PlainTextResponse, dependencies=[Depends(require_read)])
async def run_log(
    run_id: int, session: SessionDep, lines: Annotated[int, Query(ge=1, le=5000)] = 200
) -> PlainTextResponse:
    run = await existing_run(session, run_id)
    return PlainTextResponse(log_tail(Path(run.output_dir), lines))


@router.post("/{run_id}/stop", status_code=202, dependencies=[Depends(require_admin)])
async def stop_run(run_id: int, session: SessionDep, state: StateDep) -> dict[str, Any]:
    """Stop after the current step with a checkpoint (status becomes `interrupted`, resumable)."""
    run = await existing_run(session, run_id)
    if run.status not in ("queued", "running") or run.pid is None or not state.jobs.stop(run.pid):
        raise HTTPException(status_code=409, detail=f"run {run_id} is {run.status}, not running")
    return describe_run(run)


@router.post("/{run_id}/resume", status_code=202, dependencies=[Depends(require_admin)])
async def resume_run(run_id: int, session: SessionDep, state: StateDep) -> dict[str, Any]:
    """Continue an interrupted (or failed) run from its last checkpoint, in the same run."""
    run = await existing_run(session, run_id)
    if run.status not in ("interrupted", "failed"):
        raise HTTPException(status_code=409, detail=f"run {run_id} is {run.status}; only interrupted runs resume")
    if last_checkpoint(Path(run.output_dir)) is None:
        raise HTTPException(status_code=409, detail=f"run {run_id} has no checkpoint to resume from")
    run.status, run.error, run.finished_at, run.pid = "queued", None, None, None
    await launch(session, state, run, Path(run.output_dir), resume=True)
    return describe_run(run)
