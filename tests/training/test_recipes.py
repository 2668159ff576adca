"""The small-data recipe: what it sets, on fixed inputs, and that a run's own choices win."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_feedback_loop.training.config import build_config
from llm_feedback_loop.training.recipes import (
    RECIPES,
    SMALL_DATA_ROWS,
    describe,
    small_data_settings,
    with_small_data_recipe,
    without_adapter,
)
from llm_feedback_loop.training.run import small_data
from tests.training.conftest import invoke, write_export


def config(**chosen: Any) -> Any:
    return build_config({"method": "dpo", "data": "pairs.jsonl", **chosen})


@pytest.mark.parametrize(("rows", "steps"), [(8, 10), (40, 15), (54, 20), (107, 20), (SMALL_DATA_ROWS, 20)])
def test_steps_are_three_passes_between_10_and_20(rows: int, steps: int) -> None:
    assert small_data_settings(config(), rows)["max_steps"] == steps


def test_small_dpo_data_gets_lora_on_the_top_layers() -> None:
    trained, applied = with_small_data_recipe(config(), 62)
    assert applied == {**RECIPES["dpo"].settings, "max_steps": 20}
    assert (
        trained.lora,
        trained.lora_top_layers,
        trained.effective_learning_rate,
        trained.beta,
        trained.max_steps,
    ) == (
        True,
        0.4,
        3e-4,
        0.5,
        20,
    )
    assert describe(applied).startswith("lora, lora_top_layers 0.4, lora_r 16")
    assert describe(applied).endswith("learning_rate 0.0003, beta 0.5, eval_steps 4, max_steps 20")
    assert trained.eval_steps == 4  # early stopping, where the data has a held-out split


def test_large_data_and_other_methods_keep_the_defaults() -> None:
    assert small_data_settings(config(), SMALL_DATA_ROWS + 1) == {}
    assert small_data_settings(build_config({"method": "sft", "data": "x.jsonl"}), 50) == {}
    unchanged = config()
    assert with_small_data_recipe(unchanged, 5000) == (unchanged, {})


def test_full_fine_tuning_chosen_keeps_its_rate_and_no_adapter() -> None:
    applied = small_data_settings(config(lora=False), 62)
    assert applied == {"eval_steps": 4, "max_steps": 20}  # the method's own rate and beta: the recipe's go with
    # its adapter; early stopping stays
    trained, _ = with_small_data_recipe(config(lora=False), 62)
    assert (trained.lora, trained.beta) == (False, 0.1)


def test_a_beta_chosen_is_kept_with_the_recipes_adapter() -> None:
    trained, applied = with_small_data_recipe(config(beta=0.2), 62)
    assert "beta" not in applied and (trained.lora, trained.beta, trained.effective_learning_rate) == (True, 0.2, 3e-4)


def test_a_learning_rate_without_lora_keeps_full_fine_tuning() -> None:
    assert small_data_settings(config(learning_rate=1e-5), 62) == {"eval_steps": 4, "max_steps": 20}
    assert small_data_settings(config(learning_rate=1e-5, max_steps=4, eval_steps=0), 62) == {}


def test_the_log_says_why_a_run_trains_without_the_adapter() -> None:
    assert without_adapter(config()) is None
    assert without_adapter(config(lora=True, learning_rate=1e-5)) is None  # the recipe's adapter at the run's rate
    assert without_adapter(config(lora=False)) == "full fine-tuning chosen (--no-lora): no adapter"
    said: list[str] = []
    trained = small_data(config(learning_rate=1.5e-4), 62, said.append)
    assert not trained.lora and trained.effective_learning_rate == 1.5e-4
    assert said == [
        "small data (62 rows, at most 1000): the small-data recipe sets eval_steps 4, max_steps 20; learning_rate "
        "0.00015 chosen without --lora: full fine-tuning at that rate, no adapter (--lora keeps the recipe's "
        "adapter at that rate)"
    ]
    said.clear()
    small_data(config(), 62, said.append)
    assert len(said) == 1 and "full fine-tuning" not in said[0]


def test_a_runs_own_settings_win() -> None:
    applied = small_data_settings(config(lora=True, learning_rate=1e-5, lora_r=8, epochs=1), 62)
    assert "learning_rate" not in applied and "lora_r" not in applied and "max_steps" not in applied
    assert applied == {"lora_top_layers": 0.4, "lora_alpha": 32, "beta": 0.5, "eval_steps": 4}
    assert "max_steps" not in small_data_settings(config(max_steps=5), 62)


def test_a_module_pattern_keeps_its_layers() -> None:
    trained, applied = with_small_data_recipe(config(lora_target_modules=".*layers\\.1\\..*proj"), 62)
    assert "lora_top_layers" not in applied and trained.lora_top_layers is None and trained.lora


def test_llmfl_train_dpo_on_small_data_uses_the_recipe(training_database: str, tmp_path: Path) -> None:
    """No settings of its own: `llmfl train dpo` on 24 pairs trains the recipe's adapter on the top layers,
    says so, and keeps the settings with the run."""
    data = write_export(tmp_path / "exports", "dpo", count=24)
    out = tmp_path / "runs" / "dpo"
    code, output = invoke("train", "dpo", "--data", str(data), "--output-dir", str(out), "--device", "cpu")
    assert code == 0, output
    assert "small data (24 rows, at most 1000): the small-data recipe sets lora, lora_top_layers 0.4" in output
    assert (out / "model" / "adapter_config.json").is_file()
    code, shown = invoke("runs", "show", "1")
    config = json.loads(shown)["config"]
    assert (
        config["lora"],
        config["lora_top_layers"],
        config["learning_rate"],
        config["beta"],
        config["max_steps"],
    ) == (
        True,
        0.4,
        3e-4,
        0.5,
        10,
    )
