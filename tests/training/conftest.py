"""Training tests: a tiny model registered as the active version in a fresh SQLite database, and small
datasets in the export's format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llm_feedback_loop.cli import app
from llm_feedback_loop.settings import get_settings

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def arithmetic_rows(method: str, count: int = 24) -> list[dict]:
    """Rows in the export's standard format: answers to small sums, right and wrong."""
    rows = []
    for index in range(count):
        a, b = index % 7, index // 7
        question, right, wrong = f"What is {a} + {b}?", f"{a} + {b} = {a + b}.", f"{a} + {b} = {a + b + 1}."
        if method == "sft":
            rows.append({"prompt": question, "completion": right})
        elif method == "kto":
            rows.append({"prompt": question, "completion": right if index % 3 else wrong, "label": bool(index % 3)})
        else:
            rows.append({"prompt": question, "chosen": right, "rejected": wrong})
    return rows


def write_export(folder: Path, method: str, count: int = 24, test: int = 0) -> Path:
    """NAME.jsonl (or NAME.train/test.jsonl with a manifest, as `llmfl export --test-size` writes them)."""
    rows = arithmetic_rows(method, count + test)
    folder.mkdir(parents=True, exist_ok=True)
    kind = "dpo" if method == "reward" else method
    if not test:
        path = folder / f"{kind}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return path
    (folder / f"{kind}.train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows[:count]))
    (folder / f"{kind}.test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows[count:]))
    (folder / f"{kind}.manifest.json").write_text(json.dumps({"options": {"kind": kind}}))
    return folder / f"{kind}.jsonl"


@pytest.fixture
def training_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: Path) -> Iterator[str]:
    """A fresh SQLite database whose active version is the tiny model; the working folder is tmp_path."""
    url = f"sqlite:///{tmp_path}/loop.db"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("COLUMNS", "200")  # rich tables unwrapped
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    code, output = invoke("models", "add", str(tiny_model), "--name", "tiny", "--activate")
    assert code == 0, output
    yield url
    get_settings.cache_clear()
