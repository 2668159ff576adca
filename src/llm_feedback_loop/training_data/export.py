"""Exports: stored feedback → JSONL files (or a Hugging Face datasets folder) + a manifest.

Reads one prompt at a time (`storage.streams`), so memory stays flat however many rows are stored.
`NAME.jsonl` with a test split becomes `NAME.train.jsonl` and `NAME.test.jsonl`; the manifest
`NAME.manifest.json` records counts per source and split, the options and filters, and each file's sha256.
The rows of each kind, and their columns, come from the kinds table (`kinds.py`); the cap on pairs per prompt
from the caller's options (the entry points pass MAX_PAIRS_PER_PROMPT), never from settings read here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from llm_feedback_loop import __version__
from llm_feedback_loop.feedback.filters import FeedbackFilter
from llm_feedback_loop.feedback.streams import iter_prompt_groups
from llm_feedback_loop.training_data.kinds import kind_of
from llm_feedback_loop.training_data.options import ExportOptions
from llm_feedback_loop.training_data.rows import repetition_row, rows_for_group
from llm_feedback_loop.training_data.split import Split, exact_test_prompts, split_of


@dataclass(slots=True)
class ExportStats:
    rows: Counter[str] = field(default_factory=Counter)  # per split
    by_source: Counter[str] = field(default_factory=Counter)
    prompts: Counter[str] = field(default_factory=Counter)  # per split
    ties_dropped: int = 0
    labels: Counter[str] = field(default_factory=Counter)  # kto: desirable / undesirable rows
    prompts_capped: int = 0  # prompts whose preference pairs were cut to max_pairs_per_prompt


PROGRESS_EVERY = 1000  # rows between progress callbacks: a callback per row costs more than the row


def encode_row(row: dict[str, Any]) -> bytes:
    """One JSONL line: compact, UTF-8, non-ASCII kept as is."""
    return orjson.dumps(row) + b"\n"


async def iter_export_lines(
    engine: AsyncEngine,
    options: ExportOptions,
    where: FeedbackFilter,
    stats: ExportStats | None = None,
    only_split: Split | None = None,
) -> AsyncIterator[tuple[Split, bytes]]:
    """(split, JSONL line) for every row of the export, in a deterministic order."""
    stats = stats if stats is not None else ExportStats()
    held_out = await exact_split(engine, options, where) if options.exact_split else None
    async for group in iter_prompt_groups(engine, where, with_generations=options.kind == "prompt"):
        if held_out is not None:
            split: Split = "test" if group.prompt_hash in held_out else "train"
        else:
            split = split_of(group.prompt_hash, options.test_size, options.seed)
        if only_split is not None and split != only_split:
            continue
        produced = rows_for_group(group, options)
        stats.ties_dropped += produced.ties_dropped
        stats.prompts_capped += produced.pairs_capped
        if not produced.rows:
            continue
        stats.prompts[split] += 1
        rows = produced.rows
        if options.repetition_pairs and split == "train" and (extra := repetition_row(rows)) is not None:
            rows = [*rows, extra]
        for dataset_row in rows:
            stats.rows[split] += 1
            stats.by_source[dataset_row.source] += 1
            if "label" in dataset_row.row:
                stats.labels["desirable" if dataset_row.row["label"] else "undesirable"] += 1
            yield split, encode_row(dataset_row.row)


async def exact_split(engine: AsyncEngine, options: ExportOptions, where: FeedbackFilter) -> set[str]:
    """The prompts an exact split holds out: `test_size` of those that give rows (a first reading)."""
    if options.test_size <= 0:
        return set()
    giving = [
        group.prompt_hash
        async for group in iter_prompt_groups(engine, where, with_generations=options.kind == "prompt")
        if rows_for_group(group, options).rows
    ]
    return exact_test_prompts(giving, options.test_size, options.seed)


def output_paths(out: Path, test_size: float) -> dict[Split, Path]:
    """Where each split goes: `out` itself without a test split, else NAME.train.jsonl / NAME.test.jsonl."""
    if test_size <= 0:
        return {"train": out}
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.stem
    return {"train": out.with_name(f"{stem}.train.jsonl"), "test": out.with_name(f"{stem}.test.jsonl")}


def manifest_path(out: Path) -> Path:
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(f"{stem}.manifest.json")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_manifest(
    options: ExportOptions, where: FeedbackFilter, stats: ExportStats, files: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    capped = (
        {
            "capped": f"{stats.prompts_capped} prompt(s) had more preference pairs than max_pairs_per_prompt="
            f"{options.pair_cap} (MAX_PAIRS_PER_PROMPT); their best-supported pairs were kept"
        }
        if stats.prompts_capped
        else {}
    )
    return {
        "created_at": datetime.now(UTC).isoformat(),
        "llm_feedback_loop_version": __version__,
        "options": options.as_dict(),
        "filters": where.as_dict(),
        "counts": {
            "rows": sum(stats.rows.values()),
            "rows_per_split": dict(stats.rows),
            "prompts_per_split": dict(stats.prompts),
            "rows_per_source": dict(stats.by_source),
            "ties_dropped": stats.ties_dropped,
            "prompts_capped": stats.prompts_capped,
            **({"labels": dict(stats.labels)} if stats.labels else {}),
        },
        "files": files,
        **capped,
    }


async def export_to_jsonl(
    engine: AsyncEngine,
    options: ExportOptions,
    where: FeedbackFilter,
    out: Path,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write the export as JSONL (one file per split) and its manifest; returns the manifest."""
    paths = output_paths(out, options.test_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    stats = ExportStats()
    handles: dict[Split, BinaryIO] = {}
    # Write beside the target and rename at the end: a failed export never leaves a half file behind.
    partial = {split: path.with_name(path.name + ".partial") for split, path in paths.items()}
    try:
        for split, path in partial.items():
            handles[split] = path.open("wb")
        written = 0
        async for split, line in iter_export_lines(engine, options, where, stats):
            handles[split].write(line)
            written += 1
            if on_progress is not None and written % PROGRESS_EVERY == 0:
                on_progress(PROGRESS_EVERY)
        if on_progress is not None:
            on_progress(written % PROGRESS_EVERY)
    except BaseException:
        for handle in handles.values():
            handle.close()
        for path in partial.values():
            path.unlink(missing_ok=True)
        raise
    for handle in handles.values():
        handle.close()
    files: dict[str, dict[str, Any]] = {}
    for split, path in paths.items():
        partial[split].replace(path)
        files[path.name] = {
            "split": split,
            "rows": stats.rows.get(split, 0),
            "bytes": path.stat().st_size,
            "sha256": sha256_of(path),
        }
    manifest = build_manifest(options, where, stats, files)
    manifest["format"] = "jsonl"
    manifest_path(out).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


async def export_to_datasets_folder(
    engine: AsyncEngine,
    options: ExportOptions,
    where: FeedbackFilter,
    out: Path,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write the export as a Hugging Face `datasets` folder (`DatasetDict.save_to_disk`) + manifest."""
    import datasets

    with tempfile.TemporaryDirectory(prefix="llmfl-export-") as scratch:
        jsonl_manifest = await export_to_jsonl(engine, options, where, Path(scratch) / "rows.jsonl", on_progress)
        paths = output_paths(Path(scratch) / "rows.jsonl", options.test_size)
        loaded = {
            split: datasets.Dataset.from_json(str(path), cache_dir=str(Path(scratch) / "cache"))
            for split, path in paths.items()
            if path.stat().st_size > 0
        }
        # An empty split gets the columns and features of a filled one (or plain strings if none is filled).
        template = next(iter(loaded.values()), None)
        empty = (
            template.select([])
            if template is not None
            else datasets.Dataset.from_dict({column: [] for column in kind_of(options.kind).column_names})
        )
        splits = {split: loaded.get(split, empty) for split in paths}
        if out.exists():
            shutil.rmtree(out)
        # datasets writes no shard for an empty split and then cannot load it back: ask for one.
        empty_splits = {split: 1 for split, dataset in splits.items() if len(dataset) == 0}
        datasets.DatasetDict(splits).save_to_disk(str(out), num_shards=empty_splits or None)
    files = {}
    for data_file in sorted(out.rglob("*")):
        if data_file.is_file():
            files[str(data_file.relative_to(out))] = {"bytes": data_file.stat().st_size, "sha256": sha256_of(data_file)}
    manifest = dict(jsonl_manifest)
    manifest["format"] = "datasets"
    manifest["jsonl_files"] = manifest.pop("files")
    manifest["files"] = files
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


async def export_manifest_only(engine: AsyncEngine, options: ExportOptions, where: FeedbackFilter) -> dict[str, Any]:
    """The manifest an export would have, with each split's sha256 computed over the streamed lines."""
    stats = ExportStats()
    digests: dict[Split, Any] = {}
    sizes: Counter[str] = Counter()
    async for split, line in iter_export_lines(engine, options, where, stats):
        digests.setdefault(split, hashlib.sha256()).update(line)
        sizes[split] += len(line)
    splits: list[Split] = ["train", "test"] if options.test_size > 0 else ["train"]
    files = {
        split: {
            "split": split,
            "rows": stats.rows.get(split, 0),
            "bytes": sizes.get(split, 0),
            "sha256": digests.get(split, hashlib.sha256()).hexdigest(),
        }
        for split in splits
    }
    return build_manifest(options, where, stats, files)
