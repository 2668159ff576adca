"""A run's life as a library function (`training.run`): typed errors instead of exits, and an earlier run's
output folder accepted wherever a model is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_feedback_loop.settings import Settings
from llm_feedback_loop.training.run import RunFailed, plan_run, run_training
from llm_feedback_loop.training.runs import RUN_STATUSES, RunStatus
from tests.training.conftest import invoke, write_export
from tests.training.test_train import FAST, run_show


def no_database(work: object) -> object:
    raise AssertionError("the database was used")


def test_a_run_that_cannot_start_raises_a_typed_error_before_the_database(tmp_path: Path) -> None:
    settings = Settings(checkpoint_dir=tmp_path / "checkpoints", _env_file=None)  # type: ignore[call-arg]
    config = plan_run("sft", {"data": str(tmp_path / "missing.jsonl")}, settings=settings, database=no_database)
    assert config.output_dir is not None and Path(config.output_dir).is_absolute()
    with pytest.raises(RunFailed, match=r"missing\.jsonl does not exist"):
        run_training(config, settings, no_database)
    with pytest.raises(RunFailed, match="invalid training settings: epochz"):
        plan_run("sft", {"data": "x", "epochz": 1}, settings=settings, database=no_database)
    assert [str(status) for status in RUN_STATUSES] == ["queued", "running", "completed", "failed", "interrupted"]
    assert RunStatus.INTERRUPTED == "interrupted"


def test_an_earlier_runs_folder_is_a_model_to_start_from(training_database: str, tmp_path: Path) -> None:
    """`--model out-sft` after `--output-dir out-sft`: the version that run registered (or, unregistered, its
    model/ folder), not a folder the loader cannot read (it failed with a message about sentencepiece)."""
    sft = write_export(tmp_path / "exports", "sft")
    dpo = write_export(tmp_path / "exports", "dpo")
    code, output = invoke("train", "sft", "--data", str(sft), "--output-dir", "out-sft", *FAST)
    assert code == 0, output
    code, output = invoke("train", "dpo", "--data", str(dpo), "--model", "out-sft", "--output-dir", "dpo", *FAST)
    assert code == 0, output
    assert run_show(2)["parent_version_id"] == run_show(1)["output_version_id"] == 2

    code, output = invoke("train", "sft", "--data", str(sft), "--output-dir", "plain", "--no-register", *FAST)
    assert code == 0, output
    code, output = invoke("train", "dpo", "--data", str(dpo), "--model", "plain", "--output-dir", "dpo2", *FAST)
    assert code == 0, output
    run = run_show(4)
    assert run["parent_version_id"] is None and run["base_source"] == str((tmp_path / "plain" / "model").resolve())


def test_a_runs_folder_without_a_model_says_what_to_pass(training_database: str, tmp_path: Path) -> None:
    dpo = write_export(tmp_path / "exports", "dpo")
    half = tmp_path / "half"
    (half / "checkpoint-2").mkdir(parents=True)
    (half / "run.yaml").write_text(json.dumps({"method": "sft"}))
    code, output = invoke("train", "dpo", "--data", str(dpo), "--model", "half", "--output-dir", "dpo", *FAST)
    text = " ".join(output.split())
    assert code == 1 and "without a finished model" in text
    assert "llmfl train --resume --output-dir" in text and "--model" in text and "checkpoint-2" in text
    (half / "checkpoint-2").rmdir()
    code, output = invoke("train", "dpo", "--data", str(dpo), "--model", "half", "--output-dir", "dpo", *FAST)
    assert code == 1 and "no checkpoint either" in " ".join(output.split())
