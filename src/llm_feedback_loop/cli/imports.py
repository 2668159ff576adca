"""`llmfl import`: feedback in the original project's formats (JSON, JSONL, mongoexport).

llmfl import feedback.jsonl
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llm_feedback_loop.cli.common import console, fail, progress, with_database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def import_command(
    file: Annotated[Path, typer.Argument(help="JSON, JSON Lines or mongoexport output of the original project.")],
    skip_invalid: Annotated[bool, typer.Option(help="Import the good documents and report the bad ones.")] = False,
) -> None:
    """Import feedback in the original project's formats. All or nothing unless --skip-invalid."""
    from llm_feedback_loop.importing.load import ImportReport, check_documents, load_documents
    from llm_feedback_loop.importing.original import parse_text

    if not file.is_file():
        raise fail(f"{file} does not exist or is not a file")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise fail(f"{file} is not UTF-8 text: {error}") from None
    checked = check_documents(parse_text(text))
    for error in checked.errors[:50]:
        console.print(f"[yellow]{file}:{error.line}:[/yellow] {error.message}")
    if len(checked.errors) > 50:
        console.print(f"... and {len(checked.errors) - 50} more bad documents")
    if checked.errors and not skip_invalid:
        raise fail(
            f"{len(checked.errors)} bad document(s) in {file}; nothing imported. "
            "Fix them, or pass --skip-invalid to import the rest."
        )
    if checked.total_imported == 0:
        raise fail(f"{file} holds no feedback documents; nothing imported")

    async def run(engine: AsyncEngine) -> ImportReport:
        with progress() as bar:
            task = bar.add_task(f"importing {file.name}", total=checked.total_imported)
            return await load_documents(engine, parse_text(text), lambda: bar.advance(task))

    report = with_database(run)
    skipped = f", skipped {len(report.errors)} bad document(s)" if report.errors else ""
    console.print(
        f"imported {report.imported['rating']} rating(s) and {report.imported['comparison']} comparison(s){skipped}"
    )
