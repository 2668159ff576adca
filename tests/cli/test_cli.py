"""`llmfl` commands: import (all or nothing), export (JSONL with split and manifest, datasets folder), db."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import datasets
import pytest
from typer.testing import CliRunner

from llm_feedback_loop.cli import app
from llm_feedback_loop.settings import get_settings
from llm_feedback_loop.storage.migrate import head_revision
from tests.importing.test_original import MONGOEXPORT_COMPARISON, MONGOEXPORT_RATING
from tests.support.payloads import README_RATING

runner = CliRunner()


@pytest.fixture(autouse=True)
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)  # no stray .env from the project folder
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def write_feedback_file(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "feedback.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def count_rows() -> int:
    code, output = invoke("export", "kto", "--out", "count.jsonl", "--no-dedupe")
    assert code == 0, output
    return json.loads(Path("count.manifest.json").read_text())["counts"]["rows"]


def test_import_is_all_or_nothing(tmp_path: Path) -> None:
    path = write_feedback_file(tmp_path, [MONGOEXPORT_RATING, json.dumps(README_RATING | {"rating": "meh"})])
    code, output = invoke("import", str(path))
    assert code == 1
    assert "feedback.jsonl:2:" in output and "nothing imported" in output
    assert count_rows() == 0


def test_import_skip_invalid_imports_the_rest(tmp_path: Path) -> None:
    path = write_feedback_file(
        tmp_path, [MONGOEXPORT_RATING, MONGOEXPORT_COMPARISON, "{broken", json.dumps(README_RATING)]
    )
    code, output = invoke("import", str(path), "--skip-invalid")
    assert code == 0, output
    assert "imported 2 rating(s) and 1 comparison(s), skipped 1 bad document(s)" in " ".join(output.split())
    assert count_rows() == 2


def test_import_of_a_missing_file_says_so(tmp_path: Path) -> None:
    code, output = invoke("import", str(tmp_path / "nope.jsonl"))
    assert code == 1 and "does not exist" in output


def test_export_with_test_split_writes_both_files_and_a_manifest(tmp_path: Path) -> None:
    lines = [json.dumps({"prompt": f"prompt {i}", "response": f"answer {i}", "rating": "up"}) for i in range(40)]
    invoke("import", str(write_feedback_file(tmp_path, lines)))
    code, output = invoke(
        "export", "sft", "--out", "out/sft.jsonl", "--test-size", "0.25", "--format", "conversational"
    )
    assert code == 0, output
    train, test = Path("out/sft.train.jsonl"), Path("out/sft.test.jsonl")
    manifest = json.loads(Path("out/sft.manifest.json").read_text())
    assert manifest["counts"]["rows"] == 40
    assert manifest["files"]["sft.train.jsonl"]["sha256"] == hashlib.sha256(train.read_bytes()).hexdigest()
    assert manifest["files"]["sft.test.jsonl"]["sha256"] == hashlib.sha256(test.read_bytes()).hexdigest()
    assert manifest["options"]["format"] == "conversational"
    train_prompts = {json.dumps(json.loads(line)["prompt"]) for line in train.read_text().splitlines()}
    test_prompts = {json.dumps(json.loads(line)["prompt"]) for line in test.read_text().splitlines()}
    assert train_prompts and test_prompts and not train_prompts & test_prompts
    assert not list(Path("out").glob("*.partial"))


def test_export_with_repetition_pairs_counts_them_in_the_manifest(tmp_path: Path) -> None:
    # the ranking's best answer is a list: only a list gets a repetition pair
    listed = MONGOEXPORT_COMPARISON.replace(
        "Kubernetes digunakan untuk mengelola container dan deployment.", "1. Mengelola container.\\n2. Deployment."
    )
    invoke("import", str(write_feedback_file(tmp_path, [MONGOEXPORT_RATING, listed])))
    code, output = invoke("export", "dpo", "--out", "pairs.jsonl", "--repetition-pairs")
    assert code == 0, output
    manifest = json.loads(Path("pairs.manifest.json").read_text())
    assert manifest["options"]["repetition_pairs"] is True
    assert manifest["counts"]["rows_per_source"] == {"comparison": 1, "repetition": 1}
    rows = [json.loads(line) for line in Path("pairs.jsonl").read_text().splitlines()]
    assert rows[1]["chosen"] == rows[0]["chosen"] and rows[1]["rejected"] != rows[0]["rejected"]
    # Training reads them, but the small-data recipe's length counts the feedback's rows only.
    from llm_feedback_loop.training.recipes import RECIPES
    from llm_feedback_loop.training_data.files import load_export
    from llm_feedback_loop.training_data.kinds import kind_of

    data = load_export("pairs.jsonl", kind_of("dpo"), "llmfl train dpo")
    assert len(data.train) == 2 and data.feedback_rows == 1
    assert RECIPES["dpo"].steps(data.feedback_rows, 8) == RECIPES["dpo"].min_steps
    code, output = invoke("export", "sft", "--out", "sft.jsonl", "--repetition-pairs")
    assert code == 1 and "repetition pairs are preference pairs" in output


def test_export_as_datasets_folder(tmp_path: Path) -> None:
    invoke("import", str(write_feedback_file(tmp_path, [MONGOEXPORT_RATING, MONGOEXPORT_COMPARISON])))
    code, output = invoke("export", "dpo", "--out", "pairs", "--as-dataset", "--test-size", "0.5")
    assert code == 0, output
    loaded = datasets.load_from_disk("pairs")
    assert set(loaded) == {"train", "test"}
    assert sum(len(split) for split in loaded.values()) == 1
    manifest = json.loads(Path("pairs/manifest.json").read_text())
    assert manifest["format"] == "datasets" and manifest["counts"]["rows"] == 1


def test_export_refuses_bad_options() -> None:
    code, output = invoke("export", "ppo", "--out", "x.jsonl")
    assert code == 1 and "unknown dataset kind 'ppo'" in output
    code, output = invoke("export", "dpo", "--out", "x.jsonl", "--since", "last week")
    assert code == 1 and "--since 'last week' is not an ISO 8601 date" in output
    code, output = invoke("export", "dpo", "--out", "x.jsonl", "--test-size", "1")
    assert code == 1 and "test_size" in output


def test_db_upgrade_reports_the_revision() -> None:
    code, output = invoke("db", "upgrade")
    assert code == 0 and f"revision {head_revision()}" in output


def test_a_database_that_cannot_be_opened_is_reported_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://bob:secret@127.0.0.1:1/nodb")
    get_settings.cache_clear()
    code, output = invoke("db", "upgrade")
    assert code == 1
    assert "cannot open the database postgresql+asyncpg://bob:***@127.0.0.1:1/nodb" in output
    assert "secret" not in output and "Traceback" not in output
