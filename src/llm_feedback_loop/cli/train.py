"""`llmfl train`: train from feedback. A thin caller of `training.run` (plan_run, run_training); its options are
TrainConfig's fields, derived below (help from each Field's description, bools as --x/--no-x), so a setting a
method declares (training/methods/) is a flag too. `llmfl runs` is in cli/runs.py.

llmfl train sft --data exports/sft.jsonl --lora --epochs 2
llmfl train dpo --from-db --model 3 --lora          # export pairs and train on version 3 in one step
llmfl train dpo --data exports/dpo.jsonl --model checkpoints/sft-20261124-2310   # an earlier run's folder
llmfl train --mode dpo --data exports/dpo.jsonl     # the original trainer.py's way of saying it
llmfl train --resume --output-dir checkpoints/dpo-20261124-2310   # continue an interrupted run
accelerate launch --num_processes 2 -m llm_feedback_loop train sft --data ...   # several processes/GPUs
"""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llm_feedback_loop.cli.common import console, fail, load_settings, with_database
from llm_feedback_loop.cli.runs import runs_app

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from llm_feedback_loop.training.run import RunResult

__all__ = ["EXIT_INTERRUPTED", "runs_app", "train_command"]

EXIT_INTERRUPTED = 130
NOT_FLAGS = {"method"}  # the METHOD argument (and --mode) instead
# Words for a method that name another: PPO, the original project's plan, is what TRL replaced by GRPO and RLOO.
ALIASES = {
    "ppo": ("grpo", "ppo: TRL has no PPOTrainer any more (removed in TRL 1.x); training with grpo, its successor"),
}


def flag_type(annotation: Any) -> Any:
    """The type an option of a field of type `annotation` parses: bool, int, float, str, or list[str] (a field
    that takes a list: the option may be given more than once)."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    options = [arg for arg in typing.get_args(annotation) if arg is not type(None)] if union else [annotation]
    if any(typing.get_origin(option) is list for option in options):
        return list[str]
    if len(options) == 1 and options[0] in (bool, int, float, str):
        return options[0]
    return str


def flag_name(name: str, info: FieldInfo) -> str:
    from llm_feedback_loop.training.config import Flag

    spelled = next((item.name for item in info.metadata if isinstance(item, Flag)), None)
    return spelled or name.replace("_", "-")


def help_of(info: FieldInfo, kind: Any, flag: str) -> str:
    """The field's description, with the config's default (the option's own default is None: not given)."""
    from rich.markup import escape

    text = info.description or ""
    if kind == list[str]:
        text += " (repeat the option for more than one)"
    if info.default_factory is None and info.default is not None:
        shown = ("" if info.default else "no-") + flag if kind is bool else info.default
        text += f" [default: {shown}]"
    return escape(text)  # "[sigmoid, sft]" is text, not rich markup


def config_options() -> list[inspect.Parameter]:
    """An option per TrainConfig field (its own and the methods' settings), each None unless given."""
    from llm_feedback_loop.training.config import TrainConfig

    parameters = []
    for name, info in TrainConfig.model_fields.items():
        if name in NOT_FLAGS:
            continue
        kind, flag = flag_type(info.annotation), flag_name(name, info)
        declared = f"--{flag}/--no-{flag}" if kind is bool else f"--{flag}"
        metavar = "NAME" if kind == list[str] else None
        option = typer.Option(declared, help=help_of(info, kind, flag), show_default=False, metavar=metavar)
        annotation = Annotated[kind | None, option]
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation))
    return parameters


def command_options() -> list[inspect.Parameter]:
    """The options that are not settings of the run: which method, the YAML file, resume, the queued run."""
    from llm_feedback_loop.training.methods import method_names

    def option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)

    return [
        option("method", Annotated[str | None, typer.Argument(help=" | ".join([*method_names(), *ALIASES]))], None),
        option("mode", Annotated[str | None, typer.Option(help="Alias of METHOD (trainer.py's --mode).")], None),
        option("config", Annotated[Path | None, typer.Option(help="YAML file of settings; flags override it.")], None),
        option("resume", Annotated[bool, typer.Option(help="Continue an interrupted run from its checkpoint.")], False),
        option("run_id", Annotated[int | None, typer.Option(hidden=True, help="Run a run queued by the API.")], None),
    ]  # fmt: skip


def settings_of(options: dict[str, Any]) -> dict[str, Any]:
    """The run settings the flags give ({field: value}; None: not given)."""
    from llm_feedback_loop.training.config import TrainConfig

    flags = {}
    for name, info in TrainConfig.model_fields.items():
        value = options.get(name)
        if isinstance(value, list | tuple):  # a list field; `str | list[str]` takes one value as text
            value = list(value) or None
            takes_text = typing.get_origin(info.annotation) in (typing.Union, types.UnionType)
            if value is not None and len(value) == 1 and takes_text and str in typing.get_args(info.annotation):
                value = value[0]
        flags[name] = value
    flags.pop("method", None)
    return flags


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


def report(result: RunResult) -> None:
    from llm_feedback_loop.training.methods import makes_reward_model
    from llm_feedback_loop.training.runs import RunStatus

    if result.status == RunStatus.INTERRUPTED:
        console.print(
            f"[yellow]run {result.run_id} interrupted[/yellow] at step {result.metrics.get('global_step')}; "
            f"checkpoint saved.\n  continue it with: llmfl train --resume --output-dir {result.output_dir}"
        )
        raise typer.Exit(code=EXIT_INTERRUPTED)
    console.print(f"[green]run {result.run_id} completed[/green]: model in {result.model_dir}")
    print_metrics(result.metrics)
    version = result.version
    if version is not None:
        chat = f"; to chat with it: llmfl models activate {version.id}"
        chat = "" if makes_reward_model(result.config.method) else chat
        console.print(f"registered candidate version {version.name} (id {version.id}){chat}")
    elif result.not_registered:
        console.print(f"[yellow]{result.not_registered}[/yellow]")


def train_command(**options: Any) -> None:
    """Train a model from feedback (SFT, DPO, KTO, a reward model, or online RL: GRPO, RLOO) and register it as a
    candidate."""
    from llm_feedback_loop.cli.memory import keep_freed_memory
    from llm_feedback_loop.training.methods import method_names, method_of
    from llm_feedback_loop.training.run import RunFailed, RunStopped, plan_run, run_training

    keep_freed_memory()  # for the whole process: a run's, not the service's
    settings = load_settings()
    method = options.get("method") or options.get("mode")
    if method in ALIASES:
        method, note = ALIASES[method]
        console.print(note)
    resume, run_id = bool(options.get("resume")), options.get("run_id")
    if method is not None:
        try:
            method_of(method)
        except ValueError as error:
            raise fail(str(error)) from None
    if method is None and not resume and run_id is None:
        raise fail(f"name a method: llmfl train {'|'.join(method_names())} --data PATH (or --resume)")
    try:
        config = plan_run(
            method,
            settings_of(options),
            settings=settings,
            database=with_database,
            config_file=options.get("config"),
            resume=resume,
            run_id=run_id,
        )
        result = run_training(config, settings, with_database, run_id=run_id, resume=resume, say=console.print)
    except RunFailed as error:
        raise fail(str(error)) from None
    except RunStopped as stopped:
        resume_with = f"; continue with: llmfl train --resume --output-dir {stopped.output_dir}"
        console.print("[yellow]stopped[/yellow]" + (resume_with if stopped.resumable else ""))
        raise typer.Exit(code=EXIT_INTERRUPTED) from None
    if result is not None:  # None: a process other than the main one, which reports nothing
        report(result)


# Typer reads a command's options from its signature: this one's is built from TrainConfig's fields.
train_command.__signature__ = inspect.Signature([*command_options(), *config_options()])  # type: ignore[attr-defined]
