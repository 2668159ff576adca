"""`llmfl train`'s options are TrainConfig's fields: every flag it had keeps its name, bools are --x/--no-x,
list settings take the option more than once, and the methods' settings are flags too."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from llm_feedback_loop.cli import app
from llm_feedback_loop.settings import get_settings
from llm_feedback_loop.training import run
from llm_feedback_loop.training.config import TrainConfig

FLAGS = [
    "--data",
    "--from-db",
    "--model",
    "--config",
    "--output-dir",
    "--epochs",
    "--max-steps",
    "--learning-rate",
    "--batch-size",
    "--micro-batch-size",
    "--max-length",
    "--lora",
    "--no-lora",
    "--merge",
    "--no-merge",
    "--beta",
    "--strategy",
    "--test-size",
    "--name",
    "--description",
    "--register",
    "--no-register",
    "--device",
    "--save-steps",
    "--report-to",
    "--seed",
    "--resume",
    "--mode",
    "--sft-weight",
]


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch, tmp_path) -> dict[str, Any]:
    """What `llmfl train` hands to plan_run (which then stops the command)."""
    seen: dict[str, Any] = {}

    def plan(method: str | None, flags: dict[str, Any], **options: Any) -> None:
        seen.update({key: value for key, value in flags.items() if value is not None}, method=method, **options)
        raise run.RunFailed("planned")

    monkeypatch.setattr(run, "plan_run", plan)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield seen
    get_settings.cache_clear()


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, ["train", *args], env={"COLUMNS": "250"})
    return result.output


def test_every_flag_is_there_with_its_help() -> None:
    help_text = invoke("--help")
    for flag in FLAGS:
        assert flag in help_text, flag
    assert "strength of the pull toward the reference model" in help_text  # a Field's description
    assert "[sigmoid, sft]" in help_text  # text, not rich markup
    for name in TrainConfig.model_fields.keys() - {"method", "register_output"}:  # every setting is a flag
        assert f"--{name.replace('_', '-')}" in help_text, name


def test_flags_become_settings(planned: dict[str, Any]) -> None:
    invoke("--mode", "dpo", "--data", "d", "--report-to", "tensorboard", "--no-register", "--from-db", "--beta", "0.2")
    assert planned["method"] == "dpo" and planned["data"] == "d" and planned["beta"] == 0.2
    assert planned["report_to"] == ["tensorboard"] and planned["register_output"] is False and planned["from_db"]
    assert "lora" not in planned  # not given: the YAML file or the default decides
    invoke("sft", "--lora-target-modules", "q_proj", "--resume")
    assert planned["lora_target_modules"] == "q_proj" and planned["resume"] is True
    invoke("sft", "--lora-target-modules", "q_proj", "--lora-target-modules", "v_proj")
    assert planned["lora_target_modules"] == ["q_proj", "v_proj"]
