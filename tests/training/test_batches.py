"""What the trainers see: loss only on answer tokens (never prompt or padding), batches padded to their
longest example (not to a fixed 512), the chat template applied, one model in memory for DPO."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_feedback_loop.training.config import build_config
from llm_feedback_loop.training.data import to_dataset
from llm_feedback_loop.training.methods import method_of
from llm_feedback_loop.training.methods.base import TrainingJob
from llm_feedback_loop.training.runner import load_for_method, lora_config
from tests.training.conftest import arithmetic_rows


def job_for(method: str, tiny_model: Path, tmp_path: Path, **settings: object) -> TrainingJob:
    config = build_config({"method": method, "data": "unused", "batch_size": 4, "device": "cpu", **settings})
    model, tokenizer = load_for_method(config, str(tiny_model), "cpu")
    return TrainingJob(
        config=config,
        model=model,
        tokenizer=tokenizer,
        train_dataset=to_dataset(arithmetic_rows(method, 8), config.method, chat_template=True),
        eval_dataset=None,
        output_dir=tmp_path / "out",
        device="cpu",
        peft_config=lora_config(config, model) if config.lora else None,
    )


def first_batch(trainer) -> dict:
    return next(iter(trainer.get_train_dataloader()))


def test_sft_loss_is_on_the_answer_and_its_end_token_only(tiny_model: Path, tmp_path: Path) -> None:
    job = job_for("sft", tiny_model, tmp_path)
    batch = first_batch(method_of("sft").build_trainer(job))
    tokenizer = job.tokenizer
    longest = int(batch["attention_mask"].sum(dim=1).max())
    assert batch["input_ids"].shape[1] == longest < 512  # padded to the longest example in the batch
    for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"], strict=True):
        assert all(label == -100 for label, keep in zip(labels, mask, strict=True) if not keep)  # no padding
        trained = tokenizer.decode([token for token, label in zip(ids, labels, strict=True) if label != -100])
        text = tokenizer.decode([token for token, keep in zip(ids, mask, strict=True) if keep])
        assert text.startswith("<|im_start|>user\nWhat is")  # the chat template was applied
        assert trained.endswith("<|im_end|>") and "What is" not in trained and "user" not in trained
        assert trained.removesuffix("<|im_end|>").strip().endswith(".")  # the whole answer, e.g. "3 + 0 = 3."


def test_dpo_pads_to_the_longest_pair_and_keeps_one_model(tiny_model: Path, tmp_path: Path) -> None:
    trainer = method_of("dpo").build_trainer(job_for("dpo", tiny_model, tmp_path, lora=True))
    assert trainer.ref_model is None  # the reference is the base with the adapter disabled
    batch = first_batch(trainer)
    assert batch["input_ids"].shape[1] < 64


@pytest.mark.parametrize("lora", [False, True])
@pytest.mark.parametrize("method", ["dpo", "kto"])
def test_the_reference_is_computed_once_before_training(
    method: str, lora: bool, tiny_model: Path, tmp_path: Path
) -> None:
    trainer = method_of(method).build_trainer(job_for(method, tiny_model, tmp_path, lora=lora))
    assert trainer.ref_model is None
    column = "ref_chosen_logps" if method == "dpo" else "ref_logps"
    assert column in trainer.train_dataset.column_names


@pytest.mark.parametrize("method", ["kto", "reward"])
def test_other_methods_pad_to_the_longest_example(method: str, tiny_model: Path, tmp_path: Path) -> None:
    batch = first_batch(method_of(method).build_trainer(job_for(method, tiny_model, tmp_path)))
    widths = [value.shape[1] for key, value in batch.items() if key.endswith("input_ids")]
    assert widths and max(widths) < 64


def test_dpo_can_add_language_modelling_on_the_chosen_answers(tiny_model: Path, tmp_path: Path) -> None:
    build_trainer = method_of("dpo").build_trainer
    plain = build_trainer(job_for("dpo", tiny_model, tmp_path, lora=True))
    assert plain.args.loss_type == ["sigmoid"]
    anchored = build_trainer(job_for("dpo", tiny_model, tmp_path / "b", lora=True, sft_weight=0.5))
    assert anchored.args.loss_type == ["sigmoid", "sft"] and anchored.args.loss_weights == [1.0, 0.5]


@pytest.mark.parametrize("chosen", [True, False, None])
def test_bf16_as_chosen_else_on_a_cpu_that_computes_in_it_for_the_methods_measured(
    chosen: bool | None, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from llm_feedback_loop.training.methods.base import shared_arguments, use_bf16

    settings = {} if chosen is None else {"bf16": chosen}
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    job = job_for("dpo", tiny_model, tmp_path, **settings)
    assert shared_arguments(job)["bf16"] is bool(chosen)  # without the instructions bf16 would be emulated
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert shared_arguments(job)["bf16"] is (True if chosen is None else chosen)
    for method in ("sft", "kto", "reward", "grpo", "rloo"):  # not measured in bf16 on a CPU: fp32 unless chosen
        rewards = {"reward": ["fn:m.py:f"]} if method in ("grpo", "rloo") else {}
        config = build_config({"method": method, "data": "unused", **rewards, **settings})
        assert use_bf16(config, "cpu") is bool(chosen)
