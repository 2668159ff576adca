"""`llmfl export`: stored feedback as a TRL dataset with its manifest.

llmfl export dpo --out exports/pairs.jsonl --strategy best-vs-rest --test-size 0.1
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llm_feedback_loop.cli.common import console, fail, load_settings, progress, with_database
from llm_feedback_loop.training_data.kinds import KIND_NAMES

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"--{name} {value!r} is not an ISO 8601 date or time, e.g. 2026-01-31 or 2026-01-31T12:00") from None


def export_command(
    kind: Annotated[str, typer.Argument(help=" | ".join(KIND_NAMES))],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output JSONL file (a folder with --as-dataset).")],
    format: Annotated[str, typer.Option(help="standard (text) | conversational (messages).")] = "standard",
    strategy: Annotated[
        str, typer.Option(help="all-pairs | best-vs-rest | best-vs-random-lower | best-vs-worst.")
    ] = "all-pairs",
    dedupe: Annotated[bool, typer.Option(help="Emit each distinct row once.")] = True,
    include_comparisons: Annotated[bool, typer.Option(help="sft: add each comparison's best answer.")] = False,
    test_size: Annotated[float, typer.Option(help="Share of prompts held out (split by prompt hash).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the split and of random pairing.")] = 0,
    repetition_pairs: Annotated[
        bool,
        typer.Option(
            help="dpo, reward: one more training pair per prompt whose liked answer is a list: that list "
            "preferred to itself repeated."
        ),
    ] = False,
    since: Annotated[str | None, typer.Option(help="Only feedback created at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Only feedback created before (ISO 8601).")] = None,
    annotator: Annotated[str | None, typer.Option(help="Only feedback by this annotator.")] = None,
    model: Annotated[str | None, typer.Option(help="Only feedback on this model's answers.")] = None,
    as_dataset: Annotated[bool, typer.Option(help="Write a Hugging Face datasets folder (save_to_disk).")] = False,
) -> None:
    """Export stored feedback as a TRL dataset, with a manifest (counts, options, sha256 of each file)."""
    from llm_feedback_loop.feedback.filters import FeedbackFilter
    from llm_feedback_loop.training_data.export import export_to_datasets_folder, export_to_jsonl, manifest_path
    from llm_feedback_loop.training_data.options import ExportOptions

    try:
        options = ExportOptions(
            kind,  # type: ignore[arg-type]
            format,  # type: ignore[arg-type]
            strategy,  # type: ignore[arg-type]
            dedupe,
            include_comparisons,
            test_size,
            seed,
            max_pairs_per_prompt=load_settings().max_pairs_per_prompt,
            repetition_pairs=repetition_pairs,
        )
    except ValueError as error:
        raise fail(str(error)) from None
    where = FeedbackFilter(parse_time(since, "since"), parse_time(until, "until"), annotator, model)

    async def run(engine: AsyncEngine) -> dict[str, Any]:
        with progress() as bar:
            task = bar.add_task(f"exporting {kind}", total=None)
            writer = export_to_datasets_folder if as_dataset else export_to_jsonl
            return await writer(engine, options, where, out, lambda rows: bar.advance(task, rows))

    manifest = with_database(run)
    counts = manifest["counts"]
    console.print(
        f"wrote {counts['rows']} {kind} rows ({counts['rows_per_split']}) from {counts['rows_per_source']};"
        f" {counts['ties_dropped']} ties dropped"
    )
    if as_dataset:
        console.print(f"  dataset folder: {out}\n  manifest: {out / 'manifest.json'}")
    else:
        for name in manifest["files"]:
            console.print(f"  {out.parent / name}")
        console.print(f"  manifest: {manifest_path(out)}")
