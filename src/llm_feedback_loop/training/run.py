"""A training run's life as one library function: its settings and folder, the export (--from-db), the data
checked, the run recorded, trained, its model registered and how it ended recorded.

    config = plan_run("dpo", {"data": "exports/dpo.jsonl", "lora": True}, settings=settings, database=database)
    result = run_training(config, settings, database, say=print)

`llmfl train` calls these, and so does every run the API starts: the service starts `llmfl train --run-id N`
as a process of its own (torch, its memory and its crashes stay out of the service), which plans from the
queued row. `database` runs async work on the database (the CLI's `with_database`); nothing here imports an
entry point. Errors are typed: RunFailed (the message says what was wrong and what to do) and RunStopped (a
Ctrl-C that stopped the run at once); a run stopped after a step with its checkpoint is a RunResult with
status `interrupted`.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from llm_feedback_loop.models.run_folder import ERROR_FILE, MODEL_FOLDER, last_checkpoint
from llm_feedback_loop.storage.database import RunOnDatabase, in_session
from llm_feedback_loop.training.runs import RunStatus

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from llm_feedback_loop.settings import Settings
    from llm_feedback_loop.storage.tables import ModelVersion
    from llm_feedback_loop.training.config import TrainConfig
    from llm_feedback_loop.training.data import TrainingData
    from llm_feedback_loop.training.methods.base import Prepared
    from llm_feedback_loop.training.runs import StartedRun

T = TypeVar("T")


class RunFailed(Exception):
    """The run could not start, or failed; the message says why (and what to do)."""


class RunStopped(Exception):
    """Stopped at once: a second Ctrl-C, or one before training began (loading, the reference pass)."""

    def __init__(self, output_dir: Path, resumable: bool) -> None:
        super().__init__(f"stopped {'with' if resumable else 'without'} a checkpoint in {output_dir}")
        self.output_dir, self.resumable = output_dir, resumable


@dataclass
class RunResult:
    """How a run ended in the main process: completed (its model, maybe registered) or interrupted."""

    run_id: int
    status: RunStatus
    config: TrainConfig
    output_dir: Path
    model_dir: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)
    version: ModelVersion | None = None
    not_registered: str | None = None  # trained, but registering failed: why, and what to do


def world() -> tuple[int, int]:
    """(this process's rank, number of processes) under `accelerate launch` / torchrun; (0, 1) otherwise."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def default_output_dir(settings: Settings, method: str) -> Path:
    """CHECKPOINT_DIR/METHOD-TIMESTAMP; a second run started in the same second gets -2, -3, ... (never another
    run's folder)."""
    stem = settings.checkpoint_dir / f"{method}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    folder, number = stem, 1
    while folder.exists():
        number += 1
        folder = stem.with_name(f"{stem.name}-{number}")
    return folder


def settings_layers(
    method: str | None, flags: dict[str, Any], config_file: Path | None, resume: bool, database: RunOnDatabase
) -> tuple[list[dict[str, Any]], Path | None]:
    """The layers of settings, lowest first, and the output folder (a resumed run's own folder)."""
    from llm_feedback_loop.training.config import read_yaml
    from llm_feedback_loop.training.runner import saved_config
    from llm_feedback_loop.training.runs import latest_interrupted

    output_dir = Path(flags["output_dir"]) if flags.get("output_dir") else None
    layers: list[dict[str, Any]] = []
    if resume:
        if output_dir is None:
            run = in_session(database, latest_interrupted)
            if run is None:
                raise RunFailed("no interrupted run to resume; name its folder with --output-dir")
            output_dir = Path(run.output_dir)
        layers.append(saved_config(output_dir))
    if config_file is not None:
        layers.append(read_yaml(config_file))
    layers.append({"method": method, **flags})
    return layers, output_dir


def queued_layers(run_id: int, flags: dict[str, Any], database: RunOnDatabase) -> tuple[list[dict[str, Any]], Path]:
    """A run queued by the API: its stored settings under the flags, and its folder."""
    from llm_feedback_loop.storage.tables import TrainingRun

    found = in_session(database, lambda session: session.get(TrainingRun, run_id))
    if found is None:
        raise RunFailed(f"no training run {run_id}; `llmfl runs list` shows them")
    folder = Path(flags["output_dir"]) if flags.get("output_dir") else Path(found.output_dir)
    return [found.config, flags], folder


def plan_run(
    method: str | None,
    flags: dict[str, Any],
    *,
    settings: Settings,
    database: RunOnDatabase,
    config_file: Path | None = None,
    resume: bool = False,
    run_id: int | None = None,
) -> TrainConfig:
    """The checked settings of a run, lowest first: the defaults, a resumed run's saved settings (or a queued
    run's), the YAML file, the flags (None: not given). Its `output_dir` is set, absolute."""
    from llm_feedback_loop.training.config import ConfigError, build_config
    from llm_feedback_loop.training.runner import ResumeError

    try:
        if run_id is not None:
            layers, output_dir = queued_layers(run_id, flags, database)
        else:
            layers, output_dir = settings_layers(method, flags, config_file, resume, database)
        config = build_config(*layers)
    except (ConfigError, ResumeError) as error:
        raise RunFailed(str(error)) from None
    output_dir = output_dir or Path(config.output_dir or default_output_dir(settings, config.method))
    return config.model_copy(update={"output_dir": str(output_dir.resolve())})


def check_output_dir(output_dir: Path, resume: bool) -> None:
    """A fresh run never writes over another's checkpoints or model; --resume needs a checkpoint and an
    unfinished run. A folder whose run failed before its first checkpoint can simply be started again."""
    finished = (output_dir / MODEL_FOLDER).exists()
    checkpoint = last_checkpoint(output_dir)
    if resume and finished:
        raise RunFailed(
            f"the run in {output_dir} completed (its model is in {output_dir / MODEL_FOLDER}): nothing to resume"
        )
    if resume and checkpoint is None:
        raise RunFailed(f"no checkpoint in {output_dir} to resume from; start the run again without --resume")
    if not resume and (finished or checkpoint is not None):
        advice = (
            "choose another --output-dir" if finished else "add --resume to continue it, or choose another --output-dir"
        )
        raise RunFailed(f"{output_dir} holds a run already: {advice}")


def export_for_training(
    config: TrainConfig, output_dir: Path, settings: Settings, database: RunOnDatabase, say: Callable[[str], None]
) -> Path:
    """--from-db: export the stored feedback the method needs into the run's folder (kept on resume)."""
    from llm_feedback_loop.feedback.filters import FeedbackFilter
    from llm_feedback_loop.training.methods import method_of
    from llm_feedback_loop.training_data.export import export_to_jsonl
    from llm_feedback_loop.training_data.options import ExportOptions

    out = output_dir / "data" / f"{config.method}.jsonl"
    if out.exists() or out.with_name(f"{config.method}.train.jsonl").exists():
        return out
    try:
        options = ExportOptions(
            method_of(config.method).kind,  # type: ignore[arg-type]
            format="conversational",
            strategy=config.strategy,  # type: ignore[arg-type]
            test_size=config.test_size,
            seed=config.split_seed,
            max_pairs_per_prompt=settings.max_pairs_per_prompt,
        )
    except ValueError as error:
        raise RunFailed(str(error)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    manifest = database(lambda engine: export_to_jsonl(engine, options, FeedbackFilter(), out, None))
    say(f"exported {manifest['counts']['rows']} {config.method} rows from the database to {out.parent}")
    return out


def load_data(config: TrainConfig, settings: Settings, database: RunOnDatabase, run_id: int | None, say: Any) -> Any:
    """The run's checked data (exported first with --from-db); a queued run whose data is bad is failed."""
    from llm_feedback_loop.training.data import DatasetError, load_training_data

    output_dir = Path(config.output_dir or "")
    if config.from_db and world()[1] > 1:
        raise RunFailed("--from-db exports in one process: export first (`llmfl export`), then train with --data")
    data_path = export_for_training(config, output_dir, settings, database, say) if config.from_db else None
    try:
        return load_training_data(data_path or Path(config.data or ""), config.method)
    except DatasetError as error:
        if run_id is not None:
            finish(database, run_id, RunStatus.FAILED, error=str(error))
        raise RunFailed(str(error)) from None


def prepare_method(config: TrainConfig, data: TrainingData, database: RunOnDatabase, run_id: int | None) -> Prepared:
    """What the method needs beyond the model and the data (an online method's rewards), checked before any
    model loads; a queued run it refuses is failed."""
    from llm_feedback_loop.models.registry import find_version
    from llm_feedback_loop.training.methods import method_of

    def lookup(ref: str) -> Any:
        return in_session(database, lambda session: find_version(session, ref))

    try:
        return method_of(config.method).prepare(config, data.train, lookup)
    except ValueError as error:
        if run_id is not None and world()[0] == 0:
            finish(database, run_id, RunStatus.FAILED, error=str(error))
        raise RunFailed(str(error)) from None


def record_start(
    config: TrainConfig,
    data: TrainingData,
    settings: Settings,
    database: RunOnDatabase,
    run_id: int | None,
    resume: bool,
    extra_lineage: dict[str, Any] | None = None,
) -> StartedRun:
    from llm_feedback_loop.models.registry import RegistryError
    from llm_feedback_loop.training.runs import start_run

    output_dir = Path(config.output_dir or "")
    lineage = {**data.lineage(), **(extra_lineage or {})}
    try:
        return in_session(
            database,
            lambda session: start_run(
                session, config, output_dir, lineage, run_id=run_id, resume=resume, base_model=settings.base_model
            ),
        )
    except RegistryError as error:
        raise RunFailed(str(error)) from None


def base_source_only(config: TrainConfig, settings: Settings, database: RunOnDatabase) -> str:
    """What a non-main process loads (the main process has registered the base model by now)."""
    from llm_feedback_loop.training.runs import parent_of

    async def source(session: AsyncSession) -> str:
        return (await parent_of(session, config.model, settings.base_model))[1]

    return in_session(database, source)


def finish(
    database: RunOnDatabase,
    run_id: int,
    status: RunStatus,
    metrics: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    from llm_feedback_loop.training.runs import finish_run

    in_session(database, lambda session: finish_run(session, run_id, status, metrics=metrics, error=error))


def train_recording_failures(
    config: TrainConfig,
    data: TrainingData,
    source: str | None,
    database: RunOnDatabase,
    run_id: int | None,
    resume: bool,
    inputs: dict[str, Any] | None = None,
) -> Any:
    """Train; a failure or a Ctrl-C before the trainer could stop is recorded with the run (in the main process)
    and raised as RunFailed / RunStopped. A failure inside the libraries keeps its traceback in the run's folder."""
    from llm_feedback_loop.models.loader import ModelLoadError
    from llm_feedback_loop.training.config import ConfigError
    from llm_feedback_loop.training.data import DatasetError
    from llm_feedback_loop.training.runner import ResumeError, train

    output_dir = Path(config.output_dir or "")
    recorded = run_id is not None and world()[0] == 0
    try:
        return train(config, data, output_dir, source, resume=resume, inputs=inputs)
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training began (loading, reference pass)
        resumable = last_checkpoint(output_dir) is not None
        if recorded and resumable:
            error = "stopped at once by a second Ctrl-C; resumes from the last checkpoint"
            finish(database, run_id, RunStatus.INTERRUPTED, error=error)  # type: ignore[arg-type]
        elif recorded:
            error = "stopped before the first checkpoint; start it again"
            finish(database, run_id, RunStatus.FAILED, error=error)  # type: ignore[arg-type]
        raise RunStopped(output_dir, resumable) from None
    except (ModelLoadError, ResumeError, DatasetError, ConfigError, OSError) as error:
        if recorded:
            finish(database, run_id, RunStatus.FAILED, error=str(error))  # type: ignore[arg-type]
        raise RunFailed(str(error)) from None
    except Exception as error:  # a failure inside the libraries: keep the traceback in the run's folder
        (output_dir / ERROR_FILE).write_text(traceback.format_exc(), encoding="utf-8")
        message = f"training failed: {type(error).__name__}: {error} (traceback in {output_dir / ERROR_FILE})"
        if recorded:
            finish(database, run_id, RunStatus.FAILED, error=message)  # type: ignore[arg-type]
        raise RunFailed(message) from None


def small_data(config: TrainConfig, rows: int, say: Callable[[str], None] | None) -> TrainConfig:
    """The run's settings with the small-data recipe (`training/recipes.py`) where the run left them to it."""
    from llm_feedback_loop.training.config import ConfigError
    from llm_feedback_loop.training.recipes import SMALL_DATA_ROWS, describe, with_small_data_recipe, without_adapter

    try:
        trained, applied = with_small_data_recipe(config, rows)
    except ConfigError as error:
        raise RunFailed(str(error)) from None
    if applied and say is not None:
        reason = without_adapter(config)
        said = f"small data ({rows} rows, at most {SMALL_DATA_ROWS}): the small-data recipe sets {describe(applied)}"
        say(said + (f"; {reason}" if reason else ""))
    return trained


def run_training(
    config: TrainConfig,
    settings: Settings,
    database: RunOnDatabase,
    *,
    run_id: int | None = None,
    resume: bool = False,
    say: Callable[[str], None] = print,
) -> RunResult | None:
    """Train as `config` says (from `plan_run`), recording the run (`run_id`: the queued one it carries out),
    and register its model as a candidate version. `say` hears what happens. None in a process other than the
    main one (under `accelerate launch`), which records nothing. Raises RunFailed or RunStopped."""
    from llm_feedback_loop.models.registry import RegistryError
    from llm_feedback_loop.training.runs import register_output

    output_dir = Path(config.output_dir or default_output_dir(settings, config.method)).resolve()
    config = config.model_copy(update={"output_dir": str(output_dir)})
    check_output_dir(output_dir, resume)
    rank, world_size = world()
    data = load_data(config, settings, database, run_id, say)
    config = small_data(config, data.feedback_rows, say if rank == 0 else None)
    prepared = prepare_method(config, data, database, run_id)
    started: StartedRun | None = None
    if rank == 0:
        started = record_start(config, data, settings, database, run_id, resume, prepared.lineage)
        run_id, config = started.run_id, started.config
        say(
            f"run {run_id}: {config.method} on {len(data.train)} examples ({len(data.test)} held out) from "
            f"{started.parent_name or started.source}{' (LoRA)' if config.lora else ''}\n  output: {output_dir}"
            + (f"\n  training in {world_size} processes" if world_size > 1 else "")
        )
    if world_size > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()
    source = started.source if started is not None else base_source_only(config, settings, database)
    outcome = train_recording_failures(config, data, source, database, run_id, resume, prepared.inputs)
    if rank != 0:
        return None
    assert run_id is not None
    result = RunResult(run_id, outcome.status, config, output_dir, outcome.model_dir, outcome.metrics)
    if outcome.status == RunStatus.INTERRUPTED:
        finish(database, run_id, RunStatus.INTERRUPTED, metrics=outcome.metrics)
        return result
    if config.register_output and outcome.model_dir is not None:
        try:
            result.version = in_session(
                database, lambda session: register_output(session, run_id, outcome.model_dir, outcome.metrics)
            )
        except RegistryError as error:
            result.not_registered = f"trained, but not registered: {error}; register it with `llmfl models add`"
    finish(database, run_id, RunStatus.COMPLETED, metrics=outcome.metrics, error=result.not_registered)
    return result
