"""A stand-in for the original project's `scripts/trainer.py --mode sft|dpo`, for bench/bench_training.py.

The original script is not available; this reproduces its behaviour, which the training benchmark measures
our trainer against:

  sft   full fine-tuning of AutoModelForCausalLM with transformers' `Trainer`; each example is the plain
        text `prompt + " " + completion` (no chat template), tokenized with padding="max_length",
        max_length=512, truncation=True; labels = input_ids, so the loss covers everything: the prompt,
        and the padding too. TrainingArguments(use_cpu=True, learning_rate=2e-5), no evaluation, the
        model saved once at the end.
  dpo   TRL's DPOTrainer on the plain-text prompt/chosen/rejected columns, with `model` and a separately
        loaded full `ref_model` (two full copies of the model in memory); DPOConfig(use_cpu=True, bf16=False,
        max_length=512) and every other setting at the installed TRL's default (so gradient checkpointing on
        and learning rate 1e-6 with TRL 1.x).

    .venv/bin/python bench/original_trainer.py --mode sft --model FOLDER --data sft.jsonl --output-dir out

The last line printed is a JSON summary: {"mode", "examples", "epochs", "steps", "train_seconds", ...}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

MAX_LENGTH = 512
LEARNING_RATE = 2e-5


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def load_tokenizer(model: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(model: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)


def tokenize_sft(rows: list[dict[str, Any]], tokenizer: Any) -> Any:
    """Plain `prompt completion` text, padded to 512 tokens; labels are the input ids, padding included."""
    from datasets import Dataset

    def tokenize(batch: dict[str, list[str]]) -> dict[str, Any]:
        texts = [f"{p} {c}" for p, c in zip(batch["prompt"], batch["completion"], strict=True)]
        encoded = tokenizer(texts, padding="max_length", max_length=MAX_LENGTH, truncation=True)
        encoded["labels"] = [list(ids) for ids in encoded["input_ids"]]
        return encoded

    dataset = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    return dataset.map(tokenize, batched=True, remove_columns=["prompt", "completion"])


def train_sft(args: argparse.Namespace, rows: list[dict[str, Any]]) -> tuple[Any, float]:
    from transformers import Trainer, TrainingArguments, default_data_collator

    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model)
    training_args = TrainingArguments(
        output_dir=str(args.output_dir),
        use_cpu=True,
        learning_rate=LEARNING_RATE,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps if args.max_steps else -1,
        per_device_train_batch_size=args.batch_size,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        logging_steps=10,
        seed=42,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=tokenize_sft(rows, tokenizer),
        data_collator=default_data_collator,
        processing_class=tokenizer,
    )
    return trainer, timed_train(trainer)


def train_dpo(args: argparse.Namespace, rows: list[dict[str, Any]]) -> tuple[Any, float]:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model)
    ref_model = load_model(args.model)  # the second full copy
    config = DPOConfig(
        output_dir=str(args.output_dir),
        use_cpu=True,
        bf16=False,
        max_length=MAX_LENGTH,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps if args.max_steps else -1,
        per_device_train_batch_size=args.batch_size,
        save_strategy="no",
        report_to="none",
    )
    dataset = Dataset.from_list(
        [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows]
    )
    trainer = DPOTrainer(
        model=model, ref_model=ref_model, args=config, train_dataset=dataset, processing_class=tokenizer
    )
    return trainer, timed_train(trainer)


def timed_train(trainer: Any) -> float:
    started = time.perf_counter()
    trainer.train()
    return time.perf_counter() - started


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("sft", "dpo"), required=True)
    parser.add_argument("--model", required=True, help="model folder (from_pretrained)")
    parser.add_argument("--data", type=Path, required=True, help="JSONL: prompt/completion or prompt/chosen/rejected")
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    rows = read_jsonl(args.data)
    trainer, train_seconds = (train_sft if args.mode == "sft" else train_dpo)(args, rows)
    saving = time.perf_counter()
    trainer.save_model(str(args.output_dir))
    save_seconds = time.perf_counter() - saving
    summary = {
        "trainer": "original",
        "mode": args.mode,
        "examples": len(rows),
        "epochs": args.epochs,
        "steps": trainer.state.global_step,
        "train_seconds": round(train_seconds, 3),
        "save_seconds": round(save_seconds, 3),
        "total_seconds": round(time.perf_counter() - started, 3),
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
