"""One training run, start to end, without the database: prepare the base model, build the method's
trainer, train (resuming from the last checkpoint if asked), save the result, evaluate on the held-out
split. `run.run_training` records what this returns.

Output folder layout:
    OUTPUT_DIR/run.yaml         the effective settings
    OUTPUT_DIR/checkpoint-N/    checkpoints (resume from the last one)
    OUTPUT_DIR/metrics.jsonl    every logged loss, learning rate, ...
    OUTPUT_DIR/model/           the trained model (or LoRA adapter) and its tokenizer
    OUTPUT_DIR/base/            only when the parent was a LoRA adapter: the parent merged into its base
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llm_feedback_loop.models.loader import adapter_base, load_model, load_tokenizer, resolve_device, resolve_source
from llm_feedback_loop.models.run_folder import (
    CONFIG_FILE,
    MERGED_BASE_FOLDER,
    METRICS_FILE,
    MODEL_FOLDER,
    last_checkpoint,
)
from llm_feedback_loop.training.callbacks import KeepBest, MetricsLog, SkipFinalCheckpoint, StopOnSignal, finite
from llm_feedback_loop.training.config import TrainConfig
from llm_feedback_loop.training.data import TrainingData, to_dataset
from llm_feedback_loop.training.methods import method_of
from llm_feedback_loop.training.methods.base import TrainingJob, use_bf16
from llm_feedback_loop.training.runs import RunStatus

log = logging.getLogger(__name__)


class ResumeError(ValueError):
    """--resume asked for, but there is nothing to resume from."""


@dataclass
class RunOutcome:
    status: RunStatus  # completed or interrupted
    output_dir: Path
    model_dir: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)
    resumed_from: str | None = None


def save_config(config: TrainConfig, output_dir: Path) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    (output_dir / CONFIG_FILE).write_text(text, encoding="utf-8")


def saved_config(output_dir: Path) -> dict[str, Any]:
    path = output_dir / CONFIG_FILE
    if not path.is_file():
        raise ResumeError(f"{output_dir} holds no run to resume ({CONFIG_FILE} is missing)")
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def prepare_base(source: str | None, output_dir: Path) -> str:
    """A folder (or hub id) `from_pretrained` can load. A LoRA adapter parent is merged into its base
    once and saved under OUTPUT_DIR/base, so every method (and a new adapter) can start from it."""
    resolved = resolve_source(source)
    path = Path(resolved)
    if not (path.is_dir() and adapter_base(path) is not None):
        return str(path.resolve()) if path.exists() else resolved
    merged = output_dir / MERGED_BASE_FOLDER
    if not (merged / "config.json").is_file():
        log.warning("the parent %s is a LoRA adapter: merging it into its base, in %s", source, merged)
        loaded = load_model(resolved, device="cpu", dtype="float32")
        model = loaded.model.merge_and_unload()
        model.save_pretrained(merged)
        loaded.tokenizer.save_pretrained(merged)
    return str(merged.resolve())


def load_for_method(config: TrainConfig, base: str, device: str) -> tuple[Any, Any]:
    """The model to train and its tokenizer, with the method's head: a causal LM, or (`reward`) the same base
    with a one-output scoring head."""
    tokenizer = load_tokenizer(base)
    model = method_of(config.method).head.load(base, tokenizer)
    if getattr(model, "generation_config", None) is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def lora_config(config: TrainConfig, model: Any) -> Any:
    from peft import LoraConfig

    layers = top_layers(config.lora_top_layers, model)
    targets = config.lora_target_modules
    if layers and targets == "all-linear":
        targets = linear_names(model)
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        layers_to_transform=layers,
        task_type=method_of(config.method).head.peft_task_type,
    )


def top_layers(share: float | None, model: Any) -> list[int] | None:
    """The indices of the top `share` of the model's decoder layers (at least one); None: every layer."""
    count = getattr(model.config, "num_hidden_layers", None)
    if share is None or not count:
        return None
    kept = max(1, round(share * count))
    return list(range(count - kept, count))


def linear_names(model: Any) -> list[str]:
    """The names (last part) of the model's linear layers but its output head: what PEFT's "all-linear" means,
    spelt as a list, which PEFT needs to adapt only some layers."""
    import torch

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    found = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module is not head
    }
    return sorted(found)


def summarize(trainer: Any, train_output: Any | None, logged: tuple[str, ...] = ()) -> dict[str, Any]:
    """The figures a run is judged by: losses, speed, steps (and eval_* when evaluated), and the last logged
    value of each of the method's own figures (`logged`: an online method's reward, its spread, KL, ...)."""
    history = trainer.state.log_history
    losses = [entry["loss"] for entry in history if "loss" in entry]
    metrics: dict[str, Any] = {
        "global_step": trainer.state.global_step,
        "epoch": trainer.state.epoch,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
    }
    if train_output is not None:
        metrics.update({key: value for key, value in train_output.metrics.items() if isinstance(value, int | float)})
    for key in logged:
        values = [entry[key] for entry in history if isinstance(entry.get(key), int | float)]
        if values:
            metrics[f"last_{key}"] = values[-1]
    return metrics


def save_result(trainer: Any, config: TrainConfig, tokenizer: Any, model_dir: Path) -> None:
    """The trained model, LoRA adapter, or base with the adapter merged in, with its tokenizer. Called in
    every process: `save_model` gathers sharded (FSDP/DeepSpeed) weights and writes from the main one."""
    main = trainer.is_world_process_zero()
    if config.lora and config.merge:
        if main:
            trainer.accelerator.unwrap_model(trainer.model).merge_and_unload().save_pretrained(model_dir)
    else:
        trainer.save_model(str(model_dir))
    if main:
        tokenizer.save_pretrained(model_dir)


def train(
    config: TrainConfig,
    data: TrainingData,
    output_dir: Path,
    base_source: str | None,
    *,
    resume: bool = False,
    inputs: dict[str, Any] | None = None,
) -> RunOutcome:
    """Train `config.method` on `data` from `base_source` (what the loader takes; None: the default model),
    writing under `output_dir`. Blocking; raises on failure."""
    import torch

    checkpoint = last_checkpoint(output_dir) if resume else None
    if resume and checkpoint is None:
        raise ResumeError(f"no checkpoint in {output_dir} to resume from; start the run again without --resume")
    device = resolve_device(config.device)
    if config.bf16 is None:  # run.yaml says which precision it trained in, and a resumed run keeps it
        config = config.model_copy(update={"bf16": use_bf16(config, device)})
    if int(os.environ.get("RANK", "0")) == 0:  # under accelerate launch, the main process's settings
        save_config(config, output_dir)
    torch.manual_seed(config.seed)
    base = prepare_base(base_source, output_dir)
    model, tokenizer = load_for_method(config, base, device)
    test_rows = data.test if config.evaluate else []
    stopper = StopOnSignal()
    keeper = KeepBest(config.patience) if test_rows and config.eval_steps else None
    job = TrainingJob(
        config=config,
        model=model,
        tokenizer=tokenizer,
        train_dataset=to_dataset(data.train, config.method, config.chat_template),
        eval_dataset=to_dataset(test_rows, config.method, config.chat_template) if test_rows else None,
        output_dir=output_dir,
        device=device,
        peft_config=lora_config(config, model) if config.lora else None,
        callbacks=[
            stopper,
            SkipFinalCheckpoint(stopper),
            MetricsLog(output_dir / METRICS_FILE),
            *([keeper] if keeper else []),
        ],
        inputs=inputs or {},
    )
    method = method_of(config.method)
    trainer = method.build_trainer(job)
    started = time.perf_counter()
    train_output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    metrics = summarize(trainer, train_output, method.logged)
    metrics["wall_seconds"] = round(time.perf_counter() - started, 3)
    resumed_from = checkpoint.name if checkpoint else None
    if stopper.stopped:
        return RunOutcome(RunStatus.INTERRUPTED, output_dir, None, finite(metrics), resumed_from)
    if keeper is not None:  # early stopping: the kept weights are the best evaluation's
        metrics.update(keeper.summary())
    if job.eval_dataset is not None:  # before saving: --merge folds the adapter the reference needs
        metrics.update(trainer.evaluate())
        metrics.update(method.report(metrics))  # e.g. preference_accuracy: chosen scored above rejected
    model_dir = output_dir / MODEL_FOLDER
    save_result(trainer, config, tokenizer, model_dir)
    return RunOutcome(RunStatus.COMPLETED, output_dir, model_dir, finite(metrics), resumed_from)
