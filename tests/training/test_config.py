"""Training settings: defaults, YAML file, flags on top; unknown or bad settings are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_feedback_loop.training.config import REPORTERS, ConfigError, build_config, read_yaml
from llm_feedback_loop.training.methods import method_of


def test_flags_override_the_yaml_file_which_overrides_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("method: dpo\ndata: pairs.jsonl\nepochs: 3\nlearning-rate: 0.001\nlora: true\n")
    config = build_config(read_yaml(path), {"epochs": 1, "batch_size": None})
    assert config.method == "dpo" and config.lora
    assert config.epochs == 1  # the flag
    assert config.effective_learning_rate == 0.001  # the file
    assert config.batch_size == 8  # the default (a None flag does not override)


def test_learning_rate_defaults_depend_on_method_and_lora() -> None:
    full = build_config({"method": "dpo", "data": "x.jsonl"})
    lora = build_config({"method": "dpo", "data": "x.jsonl", "lora": True})
    assert full.effective_learning_rate == method_of("dpo").learning_rates.full == 5e-6
    assert lora.effective_learning_rate == method_of("dpo").learning_rates.lora == 5e-5
    assert lora.effective_learning_rate > full.effective_learning_rate


def test_online_methods_default_to_lora_on_the_top_layers_unless_the_run_says_otherwise() -> None:
    online = build_config({"method": "grpo", "data": "x.jsonl", "reward": ["fn:m:f"]})
    assert (online.lora, online.lora_top_layers) == (True, 0.4)
    assert online.effective_learning_rate == method_of("grpo").learning_rates.lora
    full = build_config({"method": "grpo", "data": "x.jsonl", "reward": ["fn:m:f"], "lora": False})
    assert full.lora is False
    pattern = build_config(
        {"method": "rloo", "data": "x.jsonl", "reward": ["fn:m:f"], "lora_target_modules": r".*\.q_proj"}
    )
    assert (pattern.lora, pattern.lora_top_layers) == (True, None)  # the pattern names its own layers
    offline = build_config({"method": "dpo", "data": "x.jsonl"})
    assert (offline.lora, offline.lora_top_layers) == (False, None)


def test_lora_on_the_top_layers_adapts_only_those(tiny_model: Path) -> None:
    from peft import get_peft_model

    from llm_feedback_loop.training.runner import load_for_method, lora_config

    config = build_config({"method": "sft", "data": "x.jsonl", "lora": True, "lora_top_layers": 0.5})
    model, _ = load_for_method(config, str(tiny_model), "cpu")  # 2 layers: the top one is adapted
    adapted = {name for name, _ in get_peft_model(model, lora_config(config, model)).named_modules()}
    assert any(".layers.1." in name and name.endswith("lora_A") for name in adapted)
    assert not any(".layers.0." in name and "lora_" in name for name in adapted)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (
            {"method": "sft", "data": "x", "lora": True, "lora_top_layers": 0.5, "lora_target_modules": ".*q_proj"},
            "lora_top_layers cannot be combined",
        ),
        ({"method": "sft", "data": "x", "lora_top_layers": 1.5}, "lora_top_layers"),
        ({"method": "sft", "data": "x", "epochz": 2}, "epochz"),
        ({"method": "ppo", "data": "x"}, "method"),
        ({"method": "sft"}, "--data"),
        ({"method": "sft", "data": "x", "from_db": True}, "not both"),
        ({"method": "sft", "data": "x", "merge": True}, "--merge"),
        ({"method": "sft", "data": "x", "batch_size": 0}, "batch_size"),
        ({"method": "sft", "data": "x", "seed": -1}, "seed"),
        ({"method": "sft", "data": "x", "split_seed": 2**32}, "split_seed"),
        ({"method": "sft", "data": "x", "test_size": 1.5}, "test_size"),
        ({"method": "sft", "data": "x", "report_to": ["surely_not_a_logger"]}, "unknown metrics logger"),
        ({"method": "sft", "data": "x", "report_to": ["all"]}, "unknown metrics logger"),
        ({"method": "sft", "data": "x", "report_to": ["comet_ml"]}, "pip install comet_ml"),
        ({"method": "sft", "data": "x", "name": "a\x00b"}, "name: must not contain a NUL"),
        ({"method": "sft", "data": "x", "lora_target_modules": ["q_proj", "\ud800"]}, "lora_target_modules: is not"),
    ],
)
def test_bad_settings_are_named(settings: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        build_config(settings)


def test_every_allowed_metrics_logger_is_one_transformers_knows_by_name() -> None:
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    assert set(REPORTERS) <= set(INTEGRATION_TO_CALLBACK)
    assert build_config({"method": "sft", "data": "x", "report_to": ["none"]}).report_to == []  # "none": no logger


def test_a_config_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("- sft\n- dpo\n")
    with pytest.raises(ConfigError, match="mapping"):
        read_yaml(path)
    path.write_text("method: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml(path)


def test_micro_batches_always_add_up_to_the_batch() -> None:
    from llm_feedback_loop.training.methods.base import micro_batches

    assert micro_batches(8, 2) == (2, 4)
    assert micro_batches(8, 8) == (8, 1)
    assert micro_batches(9, 2) == (1, 9)  # 2 does not divide 9: one example per pass, nine passes
    assert micro_batches(6, 4) == (3, 2)
    assert micro_batches(1, 2) == (1, 1)
