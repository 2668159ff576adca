"""What every `llmfl` command shares: the console, errors a user can act on, the database, progress bars."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from llm_feedback_loop.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from llm_feedback_loop.storage.database import Database

T = TypeVar("T")

console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print an error a user can act on; raise the result to end the command with exit code 1."""
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def load_settings() -> Settings:
    """The command's settings: those it chose with `use_settings`, else the environment's and `.env`'s."""
    from pydantic import ValidationError

    if _current is not None and _current.settings is not None:
        return _current.settings
    try:
        return get_settings()
    except ValidationError as error:
        raise fail("invalid settings (environment or .env): " + "; ".join(e["msg"] for e in error.errors())) from None


class CommandDatabase:
    """The database of one command: opened on first use, closed when the command ends. One event loop
    (an `asyncio.Runner`) and one engine serve every `with_database` call the command makes, so a training
    run or a loop round opens the database and checks its migrations once, not once per step."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings
        self.runner: asyncio.Runner | None = None
        self.database: Database | None = None

    def run(self, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
        from sqlalchemy.exc import SQLAlchemyError

        from llm_feedback_loop.storage.database import open_database
        from llm_feedback_loop.storage.engine import describe_database

        try:
            if self.runner is None:
                self.runner = asyncio.Runner()
            if self.database is None:
                self.database = self.runner.run(open_database(self.url()))
            return self.runner.run(work(self.database.engine))
        except (SQLAlchemyError, OSError) as error:
            reason = getattr(error, "orig", None) or error
            url = describe_database(self.url())
            raise fail(f"cannot open the database {url}: {reason}") from None

    def url(self) -> str:
        return (self.settings or load_settings()).database_url

    def close(self) -> None:
        """Dispose of the engine and the event loop; a later `run` opens them again."""
        runner, database = self.runner, self.database
        self.runner = self.database = None
        if runner is None:
            return
        try:
            if database is not None:
                runner.run(database.close())
        finally:
            runner.close()


_current: CommandDatabase | None = None


@contextlib.contextmanager
def command_database() -> Iterator[None]:
    """Scope of one command's database (the `llmfl` callback enters it for every command)."""
    global _current
    outer, _current = _current, CommandDatabase()
    try:
        yield
    finally:
        if _current is not None:
            _current.close()
        _current = outer


def use_settings(settings: Settings) -> None:
    """Make `settings` the command's settings (before its first database call): what `llmfl demo` does to run
    on its own database and model, instead of rewriting the environment."""
    if _current is None:
        raise RuntimeError("use_settings: called outside a command (`command_database()`)")
    if _current.database is not None and _current.database.url != settings.database_url:
        raise RuntimeError("use_settings: the command's database is open already")
    _current.settings = settings


def release_database() -> None:
    """Close the command's database now (it opens again on the next `with_database`): before a command hands
    the process to a server for hours (`llmfl serve`), so no idle engine and event loop stay behind."""
    if _current is not None:
        _current.close()


def with_database(work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run `work` on the command's database (creating or migrating it on first use). A database that cannot
    be opened ends the command with a message naming it, not a stack trace."""
    if _current is not None:
        return _current.run(work)
    once = CommandDatabase()  # called outside a command (a script, a test): open, run, close
    try:
        return once.run(work)
    finally:
        once.close()


def progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
