"""What a training method declares, and what every method's trainer is built from: the job (model, tokenizer,
data), the TrainingArguments all methods share, and the model heads.

A method module (`methods/NAME.py`) defines `METHOD = SomeMethod()`, a TrainingMethod saying:
- `kind`: the dataset kind it trains on (training_data/kinds.py: its columns and row checks);
- `learning_rates`: its defaults for full fine-tuning and for LoRA;
- `head`: CAUSAL_LM (writes answers) or SCORE (one output per sequence: a reward model);
- `settings`: fields of its own ({name: (type, Field(...))}); they become TrainConfig fields, YAML keys,
  API fields and `llmfl train` flags, the Field's description being the help;
- `build_trainer(job)`: its TRL trainer; `check(config)`, `check_data(rows)`: what it refuses;
- `prepare(config, rows, find_version)`: what it needs beyond the model and the data (an online method's
  rewards), checked and made ready before any model loads; it goes to the run's lineage and `job.inputs`;
- `report(metrics)`: figures of its own from the held-out evaluation (e.g. preference_accuracy).
Heavy imports (trl, transformers, torch) stay inside the functions: config and the API import the methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field
from pydantic.fields import FieldInfo

from llm_feedback_loop.training.methods import method_of

if TYPE_CHECKING:
    from llm_feedback_loop.training.config import TrainConfig

Setting = tuple[Any, FieldInfo]  # (type, Field(...)): one setting of a method, a TrainConfig field

# Declared once, used by both DPO and KTO: a setting two methods share is one declaration.
BETA: Setting = (
    float,
    Field(default=0.1, gt=0, description="DPO/KTO: strength of the pull toward the reference model."),
)


@dataclass(frozen=True)
class LearningRates:
    """A method's default learning rates. TRL's defaults (SFT 2e-5, DPO/KTO 1e-6) suit large pretrained
    models; small ones need larger steps, and a LoRA adapter larger ones still."""

    full: float  # full fine-tuning
    lora: float


@dataclass(frozen=True)
class Head:
    """What sits on top of the base model: what it is loaded as, PEFT's task type, what the registry calls it."""

    name: str
    peft_task_type: str
    model_kind: str  # the version's metadata "kind"
    load: Callable[[str, Any], Any]  # (base folder or hub id, tokenizer) → the model to train


def load_causal_lm(base: str, tokenizer: Any) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)


def load_scorer(base: str, tokenizer: Any) -> Any:
    """The base model with a one-output scoring head (`AutoModelForSequenceClassification(num_labels=1)`)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


CAUSAL_LM = Head("causal-lm", "CAUSAL_LM", "chat-model", load_causal_lm)
SCORE = Head("score", "SEQ_CLS", "reward-model", load_scorer)


@dataclass
class Prepared:
    """What `TrainingMethod.prepare` made ready: `lineage` is recorded with the run (beside its data), `inputs`
    go to `build_trainer` (`job.inputs`)."""

    lineage: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)


class TrainingMethod:
    """One training method; a subclass per method module sets the class attributes and `build_trainer`."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line, for help
    kind: ClassVar[str]
    learning_rates: ClassVar[LearningRates]
    head: ClassVar[Head] = CAUSAL_LM
    settings: ClassVar[dict[str, Setting]] = {}
    examples_per_pass: ClassVar[int] = 1  # the fewest examples one forward pass may hold
    logged: ClassVar[tuple[str, ...]] = ()  # figures its trainer logs whose last value the run's metrics keep
    bf16_on_cpu: ClassVar[bool] = False  # measured to train as well in bf16 on a CPU that computes in it
    order: ClassVar[int] = 100  # where it is listed (help, messages): SFT first, as a loop starts there
    # Common settings this method changes where a run does not set them (GRPO/RLOO: LoRA on the top layers).
    defaults: ClassVar[dict[str, Any]] = {}

    def build_trainer(self, job: TrainingJob) -> Any:
        raise NotImplementedError

    def check(self, config: TrainConfig) -> None:
        """Raise ValueError naming a setting this method cannot train with."""

    def check_data(self, rows: list[dict[str, Any]]) -> str | None:
        """Why these (checked) training rows cannot train this method; None when they can."""
        return None

    def report(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Figures of this method's own, from the held-out evaluation's `metrics`."""
        return {}

    def prepare(self, config: TrainConfig, rows: list[dict[str, Any]], find_version: Callable[[str], Any]) -> Prepared:
        """Make ready (and check) what the method needs beyond the model and the data, before any model loads;
        `find_version(ref)` looks a registered version up (None if there is none). Raise ValueError to refuse."""
        return Prepared()

    def __repr__(self) -> str:
        return f"<training method {self.name}>"


@dataclass
class TrainingJob:
    """A model, its tokenizer and the data, ready for one method's trainer."""

    config: TrainConfig
    model: Any
    tokenizer: Any
    train_dataset: Any
    eval_dataset: Any | None
    output_dir: Path
    device: str
    peft_config: Any | None = None
    callbacks: list[Any] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)  # what the method's `prepare` made ready


MICRO_BATCH_ON_CPU = 2


def micro_batches(batch_size: int, wanted: int) -> tuple[int, int]:
    """(examples per forward pass, passes per optimizer step): the largest micro-batch up to `wanted`
    that divides `batch_size`, so each step still sees exactly `batch_size` examples."""
    micro = max(size for size in range(1, min(wanted, batch_size) + 1) if batch_size % size == 0)
    return micro, batch_size // micro


def use_bf16(config: TrainConfig, device: str) -> bool:
    """Whether a run of `config` on `device` trains in bf16 mixed precision: as the run chose (`--bf16`,
    `--no-bf16`), else on a GPU that supports it, or on a CPU with AVX-512 BF16 or AMX instructions for the
    methods measured there (`bf16_on_cpu`; a CPU without them would emulate bf16: fp32 there, not measured).
    DPO on such a CPU (SmolLM2, 2 cores, 20 steps on one loop round's export of `plain`,
    bench/bench_recipes.py): the steps took 122 s instead of 162 (the whole run 212 -> 162 s, 6.8 -> 5.2
    CPU-minutes), and its candidate scored as well: greedy gain +55.0 against +51.7 points, coherence 85.0
    both, sampled gain +37.5 against +35.8. The others stay fp32 on CPU until measured: GRPO and RLOO would
    also sample and score rewards in bf16 (coarser rewards, more ties within a group)."""
    import torch

    if config.bf16 is not None:
        return config.bf16
    if device != "cpu":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if not method_of(config.method).bf16_on_cpu:
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private to torch: absent means no
    return any(bool(getattr(torch.cpu, check, lambda: False)()) for check in checks)


def shared_arguments(job: TrainingJob) -> dict[str, Any]:
    """TrainingArguments common to every method, set for small models on small data.

    TRL's defaults assume a GPU: bf16 on, gradient checkpointing on (~30% slower per step on a small model).
    On CPU: bf16 only where the processor computes in it and for the methods measured (`use_bf16`), no
    checkpointing, and micro-batches of 2 with gradient accumulation: on SmolLM2 DPO that cut peak memory from
    4.6 to 3.3 GB (full) and 3.5 to 1.8 GB (LoRA), and was no slower. Checkpoints every `save_steps` keep a run
    resumable.
    """
    config = job.config
    on_cpu = job.device == "cpu"
    micro, accumulation = micro_batches(
        config.batch_size, config.micro_batch_size or (MICRO_BATCH_ON_CPU if on_cpu else config.batch_size)
    )
    if micro < method_of(config.method).examples_per_pass:  # e.g. KTO's KL term needs 2 examples per pass
        micro, accumulation = config.batch_size, 1
    return {
        "output_dir": str(job.output_dir),
        "use_cpu": on_cpu,
        "bf16": use_bf16(config, job.device),
        "fp16": False,
        "activation_checkpointing": False,  # TRL turns it on; ~30% slower per step on small models
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "learning_rate": config.effective_learning_rate,
        "per_device_train_batch_size": micro,
        "per_device_eval_batch_size": config.batch_size,
        "gradient_accumulation_steps": accumulation,
        "warmup_steps": config.warmup_ratio,  # below 1: a share of the total steps
        "weight_decay": config.weight_decay,
        "lr_scheduler_type": "linear",
        "seed": config.seed,
        "logging_steps": config.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        **evaluations(job),
        "report_to": config.report_to or "none",
        "dataloader_num_workers": 0,
        "remove_unused_columns": True,
        "disable_tqdm": False,
    }


EVAL_BATCH_MOST = 32  # held-out examples per forward pass with early stopping


def whole_batches(rows: int, most: int) -> int:
    """The largest batch size up to `most` that divides `rows`: every batch the same size."""
    return max(size for size in range(1, min(most, max(rows, 1)) + 1) if rows % size == 0)


def evaluations(job: TrainingJob) -> dict[str, Any]:
    """When the held-out split is evaluated: once at the end (the runner does it), or, with `eval_steps`, before
    the first step and every `eval_steps` steps (early stopping: training/callbacks.py's KeepBest). TRL averages
    a figure such as DPO's preference accuracy over batches, not examples: 9 held-out pairs in batches of 8 and 1
    weigh the last pair as much as the other 8. With early stopping the batches are all one size, so its
    accuracy is the share of pairs (what the loop's held-out check counts)."""
    if job.eval_dataset is None or not job.config.eval_steps:
        return {"eval_strategy": "no"}
    return {
        "eval_strategy": "steps",
        "eval_steps": job.config.eval_steps,
        "eval_on_start": True,
        "per_device_eval_batch_size": whole_batches(len(job.eval_dataset), EVAL_BATCH_MOST),
    }


def trainer_inputs(job: TrainingJob, args: Any) -> dict[str, Any]:
    """What every method's TRL trainer takes from the job."""
    return {
        "model": job.model,
        "args": args,
        "train_dataset": job.train_dataset,
        "eval_dataset": job.eval_dataset,
        "processing_class": job.tokenizer,
        "peft_config": job.peft_config,
        "callbacks": job.callbacks,
    }
