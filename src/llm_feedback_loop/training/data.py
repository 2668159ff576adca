"""Training data: find the files of an export, check every row before any model is loaded, and hand
TRL a `datasets.Dataset` per split.

An export is a JSONL file (`NAME.jsonl`, or `NAME.train.jsonl` + `NAME.test.jsonl` with its
`NAME.manifest.json`) or a datasets folder (`llmfl export --as-dataset`). A bad row stops the run with
the file, the line and the field, so a typo never costs a model load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_feedback_loop.training.config import Method
from llm_feedback_loop.training_data.export import manifest_path, sha256_of

# The columns each method needs; the export writes exactly these.
REQUIRED_COLUMNS: dict[Method, tuple[str, ...]] = {
    "sft": ("prompt", "completion"),
    "dpo": ("prompt", "chosen", "rejected"),
    "reward": ("prompt", "chosen", "rejected"),
    "kto": ("prompt", "completion", "label"),
}
ROLES = {"system", "user", "assistant", "tool"}
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

    def lineage(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "files": self.files,
            "rows": {name: len(rows) for name, rows in self.splits.items()},
            "manifest": self.manifest,
        }


def problem_with_text_or_messages(value: Any, *, prompt: bool) -> str | None:
    """Why `value` is neither non-empty text nor a list of chat messages; None when it is fine."""
    if isinstance(value, str):
        return None if value.strip() else "is empty"
    if not isinstance(value, list):
        return f"must be text or a list of chat messages, not {type(value).__name__}"
    if not value:
        return "is an empty list of messages"
    for position, message in enumerate(value):
        if not isinstance(message, dict):
            return f"message {position} is not an object"
        if message.get("role") not in ROLES:
            return f"message {position} has role {message.get('role')!r}; expected one of {', '.join(sorted(ROLES))}"
        if not isinstance(message.get("content"), str):
            return f"message {position} has no text content"
    if not prompt and value[-1]["role"] != "assistant":
        return "must end with an assistant message"
    return None


def row_problems(row: Any, method: Method) -> list[str]:
    """What is wrong with one row for `method` (empty when nothing is)."""
    if not isinstance(row, dict):
        return [f"expected a JSON object, got {type(row).__name__}"]
    problems = []
    for column in REQUIRED_COLUMNS[method]:
        if column not in row or row[column] is None:
            problems.append(f'field "{column}" is missing')
        elif column == "label":
            if not isinstance(row[column], bool):
                problems.append(f'field "label" must be true or false, not {row[column]!r}')
        else:
            problem = problem_with_text_or_messages(row[column], prompt=column == "prompt")
            if problem:
                problems.append(f'field "{column}" {problem}')
    if method in ("dpo", "reward") and not problems and row["chosen"] == row["rejected"]:
        problems.append('fields "chosen" and "rejected" are the same answer')
    return problems


def read_jsonl(path: Path, method: Method, errors: list[str]) -> list[dict[str, Any]]:
    """Every row of a JSONL file; problems are appended to `errors` as `file:line: ...`."""
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
                errors.extend(f"{path}:{number}: {problem}" for problem in row_problems(row, method))
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


def check_manifest_kind(manifest: dict[str, Any] | None, method: Method, path: str) -> None:
    kind = ((manifest or {}).get("options") or {}).get("kind")
    compatible = {"sft": {"sft"}, "dpo": {"dpo", "reward"}, "reward": {"dpo", "reward"}, "kto": {"kto"}}
    if kind is not None and kind not in compatible[method]:
        raise DatasetError(
            f"{path} is a {kind} export; {method} needs one made with `llmfl export {method}` "
            f"(columns {', '.join(REQUIRED_COLUMNS[method])})"
        )


def load_jsonl_export(path: Path, method: Method) -> TrainingData:
    files = jsonl_split_files(path)
    if not files["train"].is_file():
        raise DatasetError(f"dataset {path} does not exist (expected a JSONL file or a datasets folder)")
    manifest = export_manifest(files["train"])
    check_manifest_kind(manifest, method, str(path))
    errors: list[str] = []
    splits = {name: read_jsonl(file, method, errors) for name, file in files.items()}
    raise_if_bad(errors)
    return TrainingData(splits, str(path), {file.name: sha256_of(file) for file in files.values()}, manifest)


def load_datasets_folder(path: Path, method: Method) -> TrainingData:
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
    check_manifest_kind(manifest, method, str(path))
    parts = loaded if isinstance(loaded, DatasetDict) else DatasetDict(train=loaded)
    if "train" not in parts:
        raise DatasetError(f"{path} has no train split (splits: {', '.join(parts)})")
    errors: list[str] = []
    splits: dict[str, list[dict[str, Any]]] = {}
    for name, part in parts.items():
        assert isinstance(part, Dataset)
        rows = part.to_list()
        for number, row in enumerate(rows):
            errors.extend(f"{path} [{name} row {number}]: {problem}" for problem in row_problems(row, method))
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


def load_training_data(path: str | Path, method: Method) -> TrainingData:
    """Read and check an export for `method`. Raises DatasetError naming the file, line and field."""
    path = Path(path).expanduser()
    data = load_datasets_folder(path, method) if path.is_dir() else load_jsonl_export(path, method)
    if not data.train:
        raise DatasetError(f"{data.path} holds no training rows; export some feedback first (`llmfl export {method}`)")
    if method == "kto" and len({row["label"] for row in data.train}) < 2:
        raise DatasetError(
            f"{data.path}: KTO needs both desirable (label true) and undesirable (label false) examples; "
            f"every row is {data.train[0]['label']}"
        )
    return data


def as_messages(value: str | list[dict[str, str]], role: str) -> list[dict[str, str]]:
    return [{"role": role, "content": value}] if isinstance(value, str) else value


def to_conversational(row: dict[str, Any]) -> dict[str, Any]:
    """A plain-text row as chat messages, so TRL applies the model's chat template: the prompt becomes
    a user turn and each answer an assistant turn. Rows already in messages are returned unchanged."""
    converted = dict(row)
    converted["prompt"] = as_messages(row["prompt"], "user")
    for column in ("completion", "chosen", "rejected"):
        if column in row:
            converted[column] = as_messages(row[column], "assistant")
    return converted


def to_dataset(rows: list[dict[str, Any]], method: Method, chat_template: bool) -> Any:
    """A `datasets.Dataset` of the columns `method` needs (plus extras TRL ignores), chat-formatted if asked."""
    from datasets import Dataset

    columns = REQUIRED_COLUMNS[method]
    prepared = [to_conversational(row) if chat_template else row for row in rows]
    kept = [{column: row[column] for column in columns} for row in prepared]
    return Dataset.from_list(kept)
