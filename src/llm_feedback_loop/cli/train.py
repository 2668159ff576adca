"""`llmfl train` and `llmfl runs`: train from feedback, and the record of every run.

llmfl train sft --data exports/sft.jsonl --lora --epochs 2
llmfl train dpo --from-db --model 3 --lora          # export pairs and train on version 3 in one step
llmfl train --mode dpo --data exports/dpo.jsonl     # the original trainer.py's way of saying it
llmfl train --resume --output-dir checkpoints/dpo-20261124-2310   # continue an interrupted run
accelerate launch --num_processes 2 -m llm_feedback_loop train sft --data ...   # several processes/GPUs
"""

from __future__ import annotations

import os
import traceback
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from llm_feedback_loop.cli.common import console, fail, load_settings, with_database
from llm_feedback_loop.training.layout import ERROR_FILE, MODEL_FOLDER, last_checkpoint

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from llm_feedback_loop.settings import Settings
    from llm_feedback_loop.training.config import TrainConfig
    from llm_feedback_loop.training.data import TrainingData

runs_app = typer.Typer(help="Training runs: what each trained, on what data, from which version, with what result.")

EXIT_INTERRUPTED = 130


def world() -> tuple[int, int]:
    """(this process's rank, number of processes) under `accelerate launch` / torchrun; (0, 1) otherwise."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def session_of(engine: AsyncEngine) -> Any:
    from sqlalchemy.ext.asyncio import AsyncSession

    return AsyncSession(engine, expire_on_commit=False)


def check_output_dir(output_dir: Path, resume: bool) -> None:
    """A fresh run never writes over another's checkpoints or model; --resume needs a checkpoint and an
    unfinished run. A folder whose run failed before its first checkpoint can simply be started again."""
    finished = (output_dir / MODEL_FOLDER).exists()
    checkpoint = last_checkpoint(output_dir)
    if resume and finished:
        raise fail(
            f"the run in {output_dir} completed (its model is in {output_dir / MODEL_FOLDER}): nothing to resume"
        )
    if resume and checkpoint is None:
        raise fail(f"no checkpoint in {output_dir} to resume from; start the run again without --resume")
    if not resume and (finished or checkpoint is not None):
        advice = (
            "choose another --output-dir" if finished else "add --resume to continue it, or choose another --output-dir"
        )
        raise fail(f"{output_dir} holds a run already: {advice}")


def default_output_dir(settings: Settings, method: str) -> Path:
    return settings.checkpoint_dir / f"{method}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def settings_layers(
    method: str | None, config_file: Path | None, flags: dict[str, Any], resume: bool, output_dir: Path | None
) -> tuple[list[dict[str, Any]], Path | None]:
    """The layers of settings, lowest first, and the output folder (a resumed run's own folder)."""
    from llm_feedback_loop.training.config import read_yaml
    from llm_feedback_loop.training.runner import saved_config
    from llm_feedback_loop.training.runs import latest_interrupted

    layers: list[dict[str, Any]] = []
    if resume:
        if output_dir is None:

            async def newest(engine: AsyncEngine) -> Any:
                async with session_of(engine) as session:
                    return await latest_interrupted(session)

            run = with_database(newest)
            if run is None:
                raise fail("no interrupted run to resume; name its folder with --output-dir")
            output_dir = Path(run.output_dir)
        layers.append(saved_config(output_dir))
    if config_file is not None:
        layers.append(read_yaml(config_file))
    layers.append({"method": method, **flags})
    return layers, output_dir


def export_for_training(config: TrainConfig, output_dir: Path) -> Path:
    """--from-db: export the stored feedback the method needs into the run's folder (kept on resume)."""
    from llm_feedback_loop.feedback.filters import FeedbackFilter
    from llm_feedback_loop.training_data.export import export_to_jsonl
    from llm_feedback_loop.training_data.options import ExportOptions

    out = output_dir / "data" / f"{config.method}.jsonl"
    if out.exists() or out.with_name(f"{config.method}.train.jsonl").exists():
        return out
    try:
        options = ExportOptions(
            config.method,
            format="conversational",
            strategy=config.strategy,  # type: ignore[arg-type]
            test_size=config.test_size,
            seed=config.split_seed,
        )
    except ValueError as error:
        raise fail(str(error)) from None
    out.parent.mkdir(parents=True, exist_ok=True)

    async def run(engine: AsyncEngine) -> dict[str, Any]:
        return await export_to_jsonl(engine, options, FeedbackFilter(), out, None)

    manifest = with_database(run)
    console.print(f"exported {manifest['counts']['rows']} {config.method} rows from the database to {out.parent}")
    return out


def start_run(
    config: TrainConfig, output_dir: Path, data: TrainingData, run_id: int | None, resume: bool, settings: Settings
) -> tuple[int, str | None, str | None, TrainConfig]:
    """Record the run as running (a new row, or the queued/interrupted one it continues). The settings are
    pinned to the parent it resolved to (a resumed run keeps its parent even if another version is active).
    Returns (run id, parent version name, the source to load, the pinned settings)."""
    from llm_feedback_loop.models.registry import RegistryError, find_version
    from llm_feedback_loop.storage.tables import TrainingRun
    from llm_feedback_loop.training.runs import create_run, mark_running, parent_of, resumable_run

    async def run(engine: AsyncEngine) -> tuple[int, str | None, str | None, TrainConfig]:
        async with session_of(engine) as session:
            if config.name and await find_version(session, config.name) is not None and not resume:
                raise RegistryError(f"a model version named {config.name!r} exists already; choose another --name")
            parent, source = await parent_of(session, config.model, settings.base_model)
            pinned = config.model_copy(update={"model": str(parent.id) if parent else source})
            existing = None
            if run_id is not None:
                existing = await session.get(TrainingRun, run_id)
            elif resume:
                existing = await resumable_run(session, output_dir)
            lineage = data.lineage()
            if existing is not None:
                await mark_running(session, existing, pinned, parent=parent, base_source=source, dataset=lineage)
                return existing.id, parent.name if parent else None, source, pinned
            created = await create_run(session, pinned, output_dir, parent=parent, base_source=source, dataset=lineage)
            return created.id, parent.name if parent else None, source, pinned

    try:
        return with_database(run)
    except RegistryError as error:
        raise fail(str(error)) from None


def base_source_only(config: TrainConfig, settings: Settings) -> str | None:
    """What a non-main process loads (the main process has registered the base model by now)."""
    from llm_feedback_loop.training.runs import parent_of

    async def run(engine: AsyncEngine) -> str | None:
        async with session_of(engine) as session:
            return (await parent_of(session, config.model, settings.base_model))[1]

    return with_database(run)


def finish(run_id: int, status: str, metrics: dict[str, Any] | None = None, error: str | None = None) -> None:
    from llm_feedback_loop.training.runs import finish_run

    async def run(engine: AsyncEngine) -> None:
        async with session_of(engine) as session:
            await finish_run(session, run_id, status, metrics=metrics, error=error)

    with_database(run)


def register(run_id: int, model_dir: Path, metrics: dict[str, Any]) -> Any:
    from llm_feedback_loop.training.runs import register_output

    async def run(engine: AsyncEngine) -> Any:
        async with session_of(engine) as session:
            return await register_output(session, run_id, model_dir, metrics)

    return with_database(run)


def queued_run_settings(run_id: int) -> tuple[dict[str, Any], Path]:
    from llm_feedback_loop.storage.tables import TrainingRun

    async def run(engine: AsyncEngine) -> Any:
        async with session_of(engine) as session:
            return await session.get(TrainingRun, run_id)

    found = with_database(run)
    if found is None:
        raise fail(f"no training run {run_id}; `llmfl runs list` shows them")
    return found.config, Path(found.output_dir)


def number(value: Any, spec: str = ".4f") -> str:
    return format(value, spec) if isinstance(value, int | float) else "n/a"


def print_metrics(metrics: dict[str, Any]) -> None:
    shown = {
        "steps": metrics.get("global_step"),
        "loss": f"{number(metrics.get('first_loss'))} → {number(metrics.get('last_loss'))}",
        "examples/s": metrics.get("train_samples_per_second"),
        "wall s": metrics.get("wall_seconds"),
    }
    if "preference_accuracy" in metrics:
        shown["held-out preference accuracy"] = number(metrics["preference_accuracy"], ".3f")
    if "eval_loss" in metrics:
        shown["held-out loss"] = number(metrics["eval_loss"])
    console.print("  " + "   ".join(f"{key}: {value}" for key, value in shown.items() if value is not None))


def train_command(
    method: Annotated[str | None, typer.Argument(help="sft | dpo | kto | reward")] = None,
    mode: Annotated[str | None, typer.Option(help="Alias of METHOD (the original `trainer.py --mode`).")] = None,
    data: Annotated[str | None, typer.Option(help="An `llmfl export` output: JSONL file or datasets folder.")] = None,
    from_db: Annotated[bool | None, typer.Option("--from-db", help="Export from the database, then train.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Start from: a version (id or name), a hub id or a folder. Default: active.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of settings; flags override it.")] = None,
    output_dir: Annotated[Path | None, typer.Option(help="Default: CHECKPOINT_DIR/METHOD-TIMESTAMP.")] = None,
    epochs: Annotated[float | None, typer.Option(help="Passes over the data (default 2).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimizer steps.")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Default: by method, LoRA or not.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Examples per step per process (default 8).")] = None,
    micro_batch_size: Annotated[
        int | None, typer.Option(help="Examples per forward pass (default: 2 on CPU, the batch on GPU).")
    ] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens per example (default 1024).")] = None,
    lora: Annotated[bool | None, typer.Option("--lora/--no-lora", help="Train a LoRA adapter (PEFT).")] = None,
    merge: Annotated[bool | None, typer.Option("--merge/--no-merge", help="With --lora: save it merged.")] = None,
    beta: Annotated[float | None, typer.Option(help="DPO/KTO beta (default 0.1).")] = None,
    strategy: Annotated[str | None, typer.Option(help="--from-db: pairs from rankings (best-vs-rest).")] = None,
    test_size: Annotated[float | None, typer.Option(help="--from-db: share of prompts held out (0.1).")] = None,
    name: Annotated[str | None, typer.Option(help="Name of the registered version.")] = None,
    description: Annotated[str | None, typer.Option(help="A note kept with the version.")] = None,
    register_version: Annotated[
        bool | None, typer.Option("--register/--no-register", help="Register the result as a candidate version.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda | cuda:N")] = None,
    save_steps: Annotated[int | None, typer.Option(help="Steps between checkpoints (default 50).")] = None,
    report_to: Annotated[str | None, typer.Option(help="Metrics log: tensorboard, wandb, ... (default none).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of initialisation and shuffling.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last checkpoint.")] = False,
    run_id: Annotated[int | None, typer.Option(hidden=True, help="Run a run queued by the API.")] = None,
) -> None:
    """Train a model from feedback (SFT, DPO, KTO or a reward model) and register it as a candidate."""
    from llm_feedback_loop.models.loader import ModelLoadError
    from llm_feedback_loop.models.registry import RegistryError
    from llm_feedback_loop.training.config import METHODS, ConfigError, build_config
    from llm_feedback_loop.training.data import DatasetError, load_training_data
    from llm_feedback_loop.training.runner import ResumeError, train

    settings = load_settings()
    method = method or mode
    if method is not None and method not in METHODS:
        raise fail(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method is None and not resume and run_id is None:
        raise fail("name a method: llmfl train sft|dpo|kto|reward --data PATH (or --resume)")
    flags = {
        "data": data,
        "from_db": from_db,
        "model": model,
        "output_dir": str(output_dir) if output_dir else None,
        "epochs": epochs,
        "max_steps": max_steps,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "micro_batch_size": micro_batch_size,
        "max_length": max_length,
        "lora": lora,
        "merge": merge,
        "beta": beta,
        "strategy": strategy,
        "test_size": test_size,
        "name": name,
        "description": description,
        "register_output": register_version,
        "device": device,
        "save_steps": save_steps,
        "report_to": [report_to] if report_to else None,
        "seed": seed,
    }
    try:
        if run_id is not None:
            queued, queued_dir = queued_run_settings(run_id)
            layers, output_dir = [queued, flags], output_dir or queued_dir
        else:
            layers, output_dir = settings_layers(method, config, flags, resume, output_dir)
        run_config = build_config(*layers)
    except (ConfigError, ResumeError) as error:
        raise fail(str(error)) from None
    output_dir = output_dir or Path(run_config.output_dir or default_output_dir(settings, run_config.method))
    output_dir = output_dir.resolve()
    run_config = run_config.model_copy(update={"output_dir": str(output_dir)})
    check_output_dir(output_dir, resume)
    rank, world_size = world()
    if run_config.from_db and world_size > 1:
        raise fail("--from-db exports in one process: export first (`llmfl export`), then train with --data")

    data_path = export_for_training(run_config, output_dir) if run_config.from_db else Path(run_config.data or "")
    try:
        training_data = load_training_data(data_path, run_config.method)
    except DatasetError as error:
        if run_id is not None:
            finish(run_id, "failed", error=str(error))
        raise fail(str(error)) from None

    if rank == 0:
        run_id, parent_name, source, run_config = start_run(
            run_config, output_dir, training_data, run_id, resume, settings
        )
        console.print(
            f"run {run_id}: {run_config.method} on {len(training_data.train)} examples"
            f" ({len(training_data.test)} held out) from {parent_name or source}{' (LoRA)' if run_config.lora else ''}"
            f"\n  output: {output_dir}" + (f"\n  training in {world_size} processes" if world_size > 1 else "")
        )
    if world_size > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()
    if rank != 0:
        source = base_source_only(run_config, settings)

    try:
        outcome = train(run_config, training_data, output_dir, source, resume=resume)
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training began (loading, reference pass)
        resumable = last_checkpoint(output_dir) is not None
        if rank == 0 and run_id is not None:
            if resumable:
                finish(
                    run_id, "interrupted", error="stopped at once by a second Ctrl-C; resumes from the last checkpoint"
                )
            else:
                finish(run_id, "failed", error="stopped before the first checkpoint; start it again")
        console.print(
            "[yellow]stopped[/yellow]"
            + (f"; continue with: llmfl train --resume --output-dir {output_dir}" if resumable else "")
        )
        raise typer.Exit(code=EXIT_INTERRUPTED) from None
    except (ModelLoadError, ResumeError, DatasetError, ConfigError, OSError) as error:
        if rank == 0 and run_id is not None:
            finish(run_id, "failed", error=str(error))
        raise fail(str(error)) from None
    except Exception as error:  # a failure inside the libraries: keep the traceback in the run's folder
        (output_dir / ERROR_FILE).write_text(traceback.format_exc(), encoding="utf-8")
        message = f"training failed: {type(error).__name__}: {error} (traceback in {output_dir / ERROR_FILE})"
        if rank == 0 and run_id is not None:
            finish(run_id, "failed", error=message)
        raise fail(message) from None

    if rank != 0:
        return
    assert run_id is not None
    if outcome.status == "interrupted":
        finish(run_id, "interrupted", metrics=outcome.metrics)
        console.print(
            f"[yellow]run {run_id} interrupted[/yellow] at step {outcome.metrics.get('global_step')}; checkpoint saved."
            f"\n  continue it with: llmfl train --resume --output-dir {output_dir}"
        )
        raise typer.Exit(code=EXIT_INTERRUPTED)
    version, not_registered = None, None
    if run_config.register_output and outcome.model_dir is not None:
        try:
            version = register(run_id, outcome.model_dir, outcome.metrics)
        except RegistryError as error:
            not_registered = f"trained, but not registered: {error}; register it with `llmfl models add`"
    finish(run_id, "completed", metrics=outcome.metrics, error=not_registered)
    console.print(f"[green]run {run_id} completed[/green]: model in {outcome.model_dir}")
    print_metrics(outcome.metrics)
    if version is not None:
        use = "" if run_config.method == "reward" else f"; to chat with it: llmfl models activate {version.id}"
        console.print(f"registered candidate version {version.name} (id {version.id}){use}")
    elif not_registered:
        console.print(f"[yellow]{not_registered}[/yellow]")


@runs_app.command("list")
def runs_list(limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20) -> None:
    """List training runs, newest first."""
    from llm_feedback_loop.training.runs import list_runs

    async def run(engine: AsyncEngine) -> list[Any]:
        async with session_of(engine) as session:
            return await list_runs(session, limit)

    runs = with_database(run)
    if not runs:
        console.print("no training runs yet: `llmfl train sft --data ...` starts one")
        return
    table = Table("id", "method", "status", "parent", "output version", "steps", "loss", "pref. acc.", "started")
    for item in runs:
        metrics = item.metrics or {}
        loss = metrics.get("last_loss")
        accuracy = metrics.get("preference_accuracy")
        table.add_row(
            str(item.id),
            item.method,
            item.status,
            str(item.parent_version_id or item.base_source or ""),
            str(item.output_version_id or ""),
            str(metrics.get("global_step", "")),
            f"{loss:.4f}" if isinstance(loss, float) else "",
            f"{accuracy:.3f}" if isinstance(accuracy, float) else "",
            item.started_at.strftime("%Y-%m-%d %H:%M") if item.started_at else "",
        )
    Console().print(table)


@runs_app.command("show")
def runs_show(run_id: Annotated[int, typer.Argument(help="Run id.")]) -> None:
    """Everything recorded about a run: config, dataset and hashes, parent, output, metrics, error."""
    import json

    from llm_feedback_loop.training.runs import describe_run, get_run

    async def run(engine: AsyncEngine) -> Any:
        async with session_of(engine) as session:
            return await get_run(session, run_id)

    found = with_database(run)
    if found is None:
        raise fail(f"no training run {run_id}; `llmfl runs list` shows them")
    typer.echo(json.dumps(describe_run(found), indent=2, default=str, ensure_ascii=False))
