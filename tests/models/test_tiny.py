"""`llmfl model init-tiny`: a tiny model that loads with from_pretrained and has a usable chat template."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from llm_feedback_loop.cli import app


def test_init_tiny_builds_a_loadable_model_with_chat_template(tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    result = CliRunner().invoke(app, ["model", "init-tiny", str(folder)])
    assert result.exit_code == 0, result.output
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    assert tokenizer.tokenize("12+7") == ["1", "2", "+", "7"]  # digits one by one
    messages = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]
    encoded = tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    mask = encoded["assistant_masks"]
    assistant_ids = [t for t, m in zip(encoded["input_ids"], mask, strict=True) if m]
    assert tokenizer.decode(assistant_ids) == "4<|im_end|>"  # loss only on the answer and its end
    prompt = tokenizer.apply_chat_template(
        messages[:1], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = model.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert output.shape[1] > prompt["input_ids"].shape[1]


def test_init_tiny_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(app, ["model", "init-tiny", str(tmp_path)])
    assert result.exit_code == 1 and "not empty" in result.output
