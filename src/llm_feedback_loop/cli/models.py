"""`llmfl models` (the registry: versions, which one is active, promotion) and `llmfl model` (tiny models).

llmfl models list
llmfl models promote 7 --auto --min-win-rate 0.55
llmfl model init-tiny models/tiny
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from llm_feedback_loop.cli.common import console, fail, with_database
from llm_feedback_loop.storage.database import in_session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


model_app = typer.Typer(help="Build models for tests and experiments.", no_args_is_help=True)
models_app = typer.Typer(help="The model registry: versions, and which one is active.", no_args_is_help=True)


@model_app.command("init-tiny")
def model_init_tiny(
    folder: Annotated[Path, typer.Argument(help="Folder to write the model and tokenizer to.")],
    hidden_size: Annotated[int, typer.Option(help="Hidden size.")] = 128,
    layers: Annotated[int, typer.Option(help="Number of layers.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
) -> None:
    """Build a tiny random-weight Llama with a locally trained tokenizer and a chat template (seconds)."""
    from llm_feedback_loop.models.tiny import build_tiny_model

    if folder.exists() and any(folder.iterdir()):
        raise fail(f"{folder} exists and is not empty; choose a new folder")
    build_tiny_model(folder, hidden_size=hidden_size, layers=layers, seed=seed)
    console.print(f"tiny model written to {folder}; use it with BASE_MODEL={folder} or `llmfl models add {folder}`")


def print_versions(versions: list[Any]) -> None:
    from rich.table import Table

    from llm_feedback_loop.models.registry import describe

    table = Table("id", "name", "status", "method", "parent", "source", "created")
    for version in versions:
        row = describe(version)
        table.add_row(
            str(row["id"]),
            row["name"],
            row["status"],
            row["method"],
            str(row["parent_id"] or ""),
            row["source"],
            row["created_at"].strftime("%Y-%m-%d %H:%M"),
        )
    Console().print(table)


@models_app.command("list")
def models_list() -> None:
    """List the registered model versions."""
    from llm_feedback_loop.models.registry import list_versions

    versions = in_session(with_database, list_versions)
    if not versions:
        console.print("no model versions yet: the base model is registered on first use, or `llmfl models add`")
        return
    print_versions(versions)


@models_app.command("add")
def models_add(
    source: Annotated[str, typer.Argument(help="A hub id, a local model folder, a .gguf file or a LoRA adapter.")],
    name: Annotated[str | None, typer.Option(help="Version name (default: from the source).")] = None,
    parent: Annotated[str | None, typer.Option(help="Parent version (id or name).")] = None,
    method: Annotated[str, typer.Option(help="How it was made: base, sft, dpo, ... or manual.")] = "manual",
    description: Annotated[str | None, typer.Option(help="A note about this version.")] = None,
    activate: Annotated[bool, typer.Option(help="Make it the active version now.")] = False,
) -> None:
    """Register a model version (a candidate unless --activate)."""
    from llm_feedback_loop.models.registry import RegistryError, add_version, find_version

    async def add(session: AsyncSession) -> Any:
        parent_version = None
        if parent is not None:
            parent_version = await find_version(session, parent)
            if parent_version is None:
                raise RegistryError(f"no parent version {parent!r}; `llmfl models list` shows them")
        return await add_version(
            session, source, name=name, method=method, parent=parent_version, description=description, activate=activate
        )

    try:
        version = in_session(with_database, add)
    except RegistryError as error:
        raise fail(str(error)) from None
    console.print(f"registered {version.name} (id {version.id}, {version.status})")


@models_app.command("activate")
def models_activate(ref: Annotated[str, typer.Argument(help="Version id or name.")]) -> None:
    """Make a version the active one: chat and the inference server use it."""
    from llm_feedback_loop.models.registry import RegistryError, activate_version

    try:
        version = in_session(with_database, lambda session: activate_version(session, ref))
    except RegistryError as error:
        raise fail(str(error)) from None
    console.print(f"active model version: {version.name} (id {version.id})")


@models_app.command("promote")
def models_promote(
    ref: Annotated[str, typer.Argument(help="The candidate version (id or name).")],
    auto: Annotated[bool, typer.Option(help="Promote only if the rule holds (else exit code 3).")] = False,
    min_win_rate: Annotated[float, typer.Option(help="--auto: least win rate against the parent.")] = 0.55,
    max_drop: Annotated[float, typer.Option(help="--auto: most points any shared metric may fall.")] = 1.0,
    min_gain: Annotated[
        float,
        typer.Option(help="--auto: a measured task-score gain's 95% interval must be above this many points."),
    ] = 0.0,
) -> None:
    """Make a candidate the active version (chat and the inference server switch to it); with --auto, only
    if its evaluations beat its parent's by the rule."""
    from llm_feedback_loop.models.promotion import promote_version
    from llm_feedback_loop.models.registry import RegistryError

    def promote(session: AsyncSession) -> Any:
        return promote_version(session, ref, auto=auto, min_win_rate=min_win_rate, max_drop=max_drop, min_gain=min_gain)

    try:
        version, decision = in_session(with_database, promote)
    except RegistryError as error:
        raise fail(str(error)) from None
    if auto and not decision.promote:
        console.print(f"[yellow]not promoted[/yellow]: {version.name}: " + "; ".join(decision.reasons))
        raise typer.Exit(code=3)
    console.print(f"promoted {version.name} (id {version.id}): it is the active version now")
