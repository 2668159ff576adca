"""The one model loader: local folders, LoRA adapters on their base, clear errors, a fallback chat template."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llm_feedback_loop.models.chat_template import CHATML_TEMPLATE
from llm_feedback_loop.models.loader import ModelLoadError, load_model


def test_loads_a_local_folder_on_cpu(tiny_model: Path) -> None:
    loaded = load_model(str(tiny_model))
    assert loaded.device == "cpu"
    assert loaded.context_length == 512
    assert loaded.tokenizer.chat_template


def test_loads_a_lora_adapter_on_top_of_its_base(tiny_model: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model

    base = load_model(str(tiny_model))
    adapted = get_peft_model(base.model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    adapter = tmp_path / "adapter"
    adapted.save_pretrained(adapter)
    loaded = load_model(str(adapter))
    assert isinstance(loaded.model, PeftModel)
    assert loaded.tokenizer.chat_template


def test_a_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"model folder .*no-such-model does not exist"):
        load_model(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelLoadError, match="cannot load model 'not-a/real-model'") as error:
        load_model("not-a/real-model")  # offline: no hub
    assert "hub id" in str(error.value)
    with pytest.raises(ModelLoadError, match="GGUF file"):
        load_model(str(tmp_path / "missing.gguf"))


def test_a_tokenizer_without_chat_template_gets_chatml(tiny_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "no-template"
    shutil.copytree(tiny_model, copy)
    (copy / "chat_template.jinja").unlink()
    loaded = load_model(str(copy))
    assert loaded.tokenizer.chat_template == CHATML_TEMPLATE


def test_a_training_runs_folder_stands_for_its_model(tiny_model: Path, tmp_path: Path) -> None:
    """`--model out-sft` after `llmfl train sft --output-dir out-sft`: the run's model/ folder is loaded."""
    from llm_feedback_loop.models.loader import resolve_source

    run = tmp_path / "out-sft"
    run.mkdir()
    (run / "run.yaml").write_text("method: sft\n", encoding="utf-8")
    shutil.copytree(tiny_model, run / "model")
    assert resolve_source(str(run)) == str(run / "model")
    loaded = load_model(str(run), device="cpu")
    assert loaded.tokenizer.chat_template


def test_a_runs_folder_without_a_model_says_what_to_pass(tmp_path: Path) -> None:
    from llm_feedback_loop.models.loader import resolve_source

    run = tmp_path / "out-dpo"
    (run / "checkpoint-4").mkdir(parents=True)
    (run / "run.yaml").write_text("method: dpo\n", encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"without a finished model .*--resume --output-dir .*checkpoint-4"):
        resolve_source(str(run))
