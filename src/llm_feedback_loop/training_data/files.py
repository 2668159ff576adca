"""The files of an export, read back and checked: a JSONL file (`NAME.jsonl`, or `NAME.train.jsonl` +
`NAME.test.jsonl` with its `NAME.manifest.json`) or a datasets folder (`llmfl export --as-dataset`). Every row
is checked against its kind (kinds.py) before anything uses it; a bad row is reported with the file, the line
and the field, so a typo never costs a model load. Training (training/data.py) and evaluation read exports here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_feedback_loop.training_data.export import manifest_path, sha256_of
from llm_feedback_loop.training_data.kinds import Kind, kind_of

MAX_REPORTED_ERRORS = 10


class DatasetError(ValueError):
    """A dataset that cannot be trained on; the message names the file, line and field."""


@dataclass
class TrainingData:
    """Checked rows per split, where they came from, and their hashes (for the run's lineage)."""

    splits: dict[str, list[dict[str, Any]]]
    path: str
    files: dict[str, str] = field(default_factory=dict)  # file name → sha256
    manifest: dict[str, Any] | None = None

    @property
    def train(self) -> list[dict[str, Any]]:
        return self.splits["train"]

    @property
    def test(self) -> list[dict[str, Any]]:
        return self.splits.get("test", [])

    @property
    def feedback_rows(self) -> int:
        """The training rows that came from feedback: all of them, less the repetition pairs the export's
        manifest counts (`training_data/repetition.py`), which the small-data recipe's length leaves out."""
        counts = (self.manifest or {}).get("counts") or {}
        added = (counts.get("rows_per_source") or {}).get("repetition", 0)
        return max(0, len(self.train) - added) if isinstance(added, int) else len(self.train)

    def lineage(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "files": self.files,
            "rows": {name: len(rows) for name, rows in self.splits.items()},
            "manifest": self.manifest,
        }


def read_jsonl(path: Path, kind: str, errors: list[str]) -> list[dict[str, Any]]:
    """Every row of a JSONL file of dataset kind `kind`; problems are appended to `errors` as `file:line: ...`."""
    checked = kind_of(kind)
    rows = []
    try:
        handle = path.open(encoding="utf-8")
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror or error}") from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    errors.append(f"{path}:{number}: not valid JSON ({error.msg} at column {error.colno})")
                    continue
                errors.extend(f"{path}:{number}: {problem}" for problem in checked.row_problems(row))
                rows.append(row)
        except UnicodeDecodeError:
            errors.append(f"{path}: not UTF-8 text")
    return rows


def jsonl_split_files(path: Path) -> dict[str, Path]:
    """The split files an export path names: FILE itself, or NAME.train.jsonl (+ NAME.test.jsonl)."""
    stem = path.name.removesuffix(".jsonl").removesuffix(".train").removesuffix(".test")
    train, test = path.with_name(f"{stem}.train.jsonl"), path.with_name(f"{stem}.test.jsonl")
    if path.name.endswith((".train.jsonl", ".test.jsonl")) or (not path.exists() and train.exists()):
        return {"train": train, "test": test} if test.exists() else {"train": train}
    return {"train": path}


def export_manifest(path: Path) -> dict[str, Any] | None:
    stem = path.name.removesuffix(".jsonl").removesuffix(".train").removesuffix(".test")
    candidate = manifest_path(path.with_name(f"{stem}.jsonl"))
    if candidate.is_file():
        try:
            return json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
    return None


def check_manifest_kind(manifest: dict[str, Any] | None, wanted: Kind, wanted_by: str, path: str) -> None:
    """An export whose manifest names a kind of other rows than `wanted`'s is refused, naming the export to make."""
    kind = ((manifest or {}).get("options") or {}).get("kind")
    if kind is not None and not wanted.reads(kind):
        raise DatasetError(
            f"{path} is a {kind} export; {wanted_by} needs one made with `llmfl export {wanted.name}` "
            f"(columns {', '.join(wanted.column_names)})"
        )


def load_jsonl_export(path: Path, kind: Kind, wanted_by: str) -> TrainingData:
    files = jsonl_split_files(path)
    if not files["train"].is_file():
        raise DatasetError(f"dataset {path} does not exist (expected a JSONL file or a datasets folder)")
    manifest = export_manifest(files["train"])
    check_manifest_kind(manifest, kind, wanted_by, str(path))
    errors: list[str] = []
    splits = {name: read_jsonl(file, kind.name, errors) for name, file in files.items()}
    raise_if_bad(errors)
    return TrainingData(splits, str(path), {file.name: sha256_of(file) for file in files.values()}, manifest)


def load_datasets_folder(path: Path, kind: Kind, wanted_by: str) -> TrainingData:
    from datasets import Dataset, DatasetDict, load_from_disk

    try:
        loaded = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as error:
        raise DatasetError(f"{path} is not a datasets folder (`llmfl export --as-dataset`): {error}") from None
    manifest_file = path / "manifest.json"
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8")) if manifest_file.is_file() else None
    except (OSError, json.JSONDecodeError) as error:
        raise DatasetError(f"{manifest_file} is not a readable manifest: {error}") from None
    check_manifest_kind(manifest, kind, wanted_by, str(path))
    parts = loaded if isinstance(loaded, DatasetDict) else DatasetDict(train=loaded)
    if "train" not in parts:
        raise DatasetError(f"{path} has no train split (splits: {', '.join(parts)})")
    errors: list[str] = []
    splits: dict[str, list[dict[str, Any]]] = {}
    for name, part in parts.items():
        assert isinstance(part, Dataset)
        rows = part.to_list()
        for number, row in enumerate(rows):
            errors.extend(f"{path} [{name} row {number}]: {problem}" for problem in kind.row_problems(row))
        splits[name] = rows
    raise_if_bad(errors)
    files = (manifest or {}).get("files") or {}
    hashes = {name: info.get("sha256", "") for name, info in files.items() if isinstance(info, dict)}
    return TrainingData(splits, str(path), hashes, manifest)


def raise_if_bad(errors: list[str]) -> None:
    if not errors:
        return
    shown = errors[:MAX_REPORTED_ERRORS]
    more = f"\n... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
    raise DatasetError(f"{len(errors)} bad row(s); nothing trained:\n" + "\n".join(shown) + more)


def load_export(path: str | Path, kind: Kind, wanted_by: str) -> TrainingData:
    """Read and check an export of rows of `kind` (for `wanted_by`, named in messages). Raises DatasetError."""
    path = Path(path).expanduser()
    return load_datasets_folder(path, kind, wanted_by) if path.is_dir() else load_jsonl_export(path, kind, wanted_by)
