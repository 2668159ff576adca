"""What every `llmfl` command shares: the console, errors a user can act on, the database, progress bars."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from llm_feedback_loop.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")

console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print an error a user can act on; raise the result to end the command with exit code 1."""
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def load_settings() -> Settings:
    from pydantic import ValidationError

    try:
        return get_settings()
    except ValidationError as error:
        raise fail("invalid settings (environment or .env): " + "; ".join(e["msg"] for e in error.errors())) from None


def with_database(work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Open the database (creating or migrating it), run `work` on it, close it. A database that cannot be
    opened ends the command with a message naming it, not a stack trace."""
    from sqlalchemy.exc import SQLAlchemyError

    from llm_feedback_loop.storage.engine import create_engine, describe_database
    from llm_feedback_loop.storage.migrate import upgrade_to_head

    settings = load_settings()

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            await upgrade_to_head(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (SQLAlchemyError, OSError) as error:
        reason = getattr(error, "orig", None) or error
        raise fail(f"cannot open the database {describe_database(settings.database_url)}: {reason}") from None


def progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
