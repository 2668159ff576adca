"""The settings of a training run: defaults for small models on small data, a YAML file, then flags.

Precedence, lowest first: these defaults (and BASE_MODEL / CHECKPOINT_DIR from `.env`), the YAML file
given with `--config`, the command's flags. The effective settings are saved with the run.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Method = Literal["sft", "dpo", "kto", "reward"]
METHODS: tuple[Method, ...] = ("sft", "dpo", "kto", "reward")

# TRL's defaults (SFT 2e-5, DPO/KTO 1e-6) suit large pretrained models; small ones need larger steps.
FULL_FINE_TUNING_LEARNING_RATE: dict[Method, float] = {"sft": 5e-5, "dpo": 5e-6, "kto": 5e-6, "reward": 5e-5}
LORA_LEARNING_RATE: dict[Method, float] = {"sft": 2e-4, "dpo": 5e-5, "kto": 5e-5, "reward": 2e-4}


DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Reporter:
    """A metrics logger transformers reports to by name: the modules that provide it, and the prefixes of the
    environment variables a run that uses it needs (its keys; a run started by the service inherits no others)."""

    modules: tuple[str, ...]
    environment: tuple[str, ...] = ()


# The names transformers' `report_to` accepts (its INTEGRATION_TO_CALLBACK), less "all": a run reports only to
# loggers it names. Only these module names are ever looked up, so no client's text reaches the import system.
REPORTERS: dict[str, Reporter] = {
    "tensorboard": Reporter(("tensorboard", "tensorboardX")),
    "wandb": Reporter(("wandb",), ("WANDB_",)),
    "mlflow": Reporter(("mlflow",), ("MLFLOW_", "DATABRICKS_")),
    "trackio": Reporter(("trackio",), ("TRACKIO_",)),
    "comet_ml": Reporter(("comet_ml",), ("COMET_",)),
    "clearml": Reporter(("clearml",), ("CLEARML_",)),
    "neptune": Reporter(("neptune",), ("NEPTUNE_",)),
    "dvclive": Reporter(("dvclive",), ("DVCLIVE_",)),
    "codecarbon": Reporter(("codecarbon",), ("CODECARBON_",)),
    "azure_ml": Reporter(("azureml",), ("AZUREML_",)),
    "swanlab": Reporter(("swanlab",), ("SWANLAB_",)),
    "dagshub": Reporter(("dagshub",), ("DAGSHUB_",)),
    "flyte": Reporter(("flytekit",), ("FLYTE_",)),
}


class ConfigError(ValueError):
    """Settings that cannot be used; the message names the setting."""


class TrainConfig(BaseModel):
    """Every setting of a run. Unknown keys are refused (a typo in a YAML file must not pass silently)."""

    model_config = ConfigDict(extra="forbid")

    method: Method
    # What to train on: an export (JSONL file or datasets folder), or export from the database first.
    data: str | None = None
    from_db: bool = False
    strategy: str = Field(default="best-vs-rest", description="--from-db: how rankings become pairs.")
    test_size: float = Field(default=0.1, ge=0.0, lt=1.0, description="--from-db: share of prompts held out.")
    split_seed: int = 0
    # What to start from: a registered version (id or name), a hub id or a folder. None: the active version.
    model: str | None = None
    output_dir: str | None = None
    name: str | None = Field(default=None, description="Name of the registered version (default: from the run).")
    description: str | None = None
    register_output: bool = Field(default=True, description="Register the result as a candidate version.")

    epochs: float = Field(default=2.0, gt=0)
    max_steps: int = Field(default=-1, description="Stop after this many optimizer steps (-1: run the epochs).")
    learning_rate: float | None = Field(default=None, gt=0, description="Default: by method, and LoRA or not.")
    batch_size: int = Field(default=8, ge=1, description="Examples per optimizer step (per process).")
    micro_batch_size: int | None = Field(
        default=None,
        ge=1,
        description="Examples per forward pass; batch_size is reached by gradient accumulation. "
        "Default: 2 on CPU (lower peak memory, and faster there), batch_size on a GPU.",
    )
    max_length: int = Field(default=1024, ge=8, description="Tokens per example; longer ones are truncated.")
    warmup_ratio: float = Field(default=0.0, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    seed: int = 42

    lora: bool = False
    merge: bool = Field(default=False, description="With --lora: save the base with the adapter merged in.")
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    lora_target_modules: str | list[str] = "all-linear"

    beta: float = Field(default=0.1, gt=0, description="DPO/KTO: strength of the pull toward the reference model.")
    sft_weight: float = Field(
        default=0.0,
        ge=0.0,
        description="DPO: weight of a language-modelling loss on the chosen answers added to the preference loss "
        "(TRL's loss_type [sigmoid, sft], as RPO); it keeps the model writing answers like the chosen ones.",
    )
    chat_template: bool = Field(default=True, description="Plain-text rows become chat messages (user, assistant).")

    logging_steps: int = Field(default=5, ge=1)
    save_steps: int = Field(default=50, ge=1)
    save_total_limit: int | None = Field(default=2, ge=1)
    evaluate: bool = Field(default=True, description="Evaluate on the test split when there is one.")
    report_to: list[str] = Field(
        default_factory=list, description="Metrics loggers, from REPORTERS (e.g. [tensorboard]); default none."
    )
    device: str = "auto"

    @model_validator(mode="after")
    def check_source(self) -> TrainConfig:
        if self.data is None and not self.from_db:
            raise ValueError("give --data PATH (an export) or --from-db")
        if self.data is not None and self.from_db:
            raise ValueError("give either --data or --from-db, not both")
        if self.merge and not self.lora:
            raise ValueError("--merge only applies with --lora")
        if self.method == "kto" and (self.batch_size < 2 or (self.micro_batch_size or 2) < 2):
            raise ValueError("KTO compares each answer with others in its batch: batch_size and micro_batch_size >= 2")
        if self.device not in DEVICES:
            hint = "; choose a GPU with CUDA_VISIBLE_DEVICES=N" if self.device.startswith("cuda:") else ""
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {self.device!r}{hint}")
        return self

    @field_validator("*")
    @classmethod
    def storable_text(cls, value: Any) -> Any:
        """Text settings are stored with the run and looked up in the registry: PostgreSQL refuses a NUL
        character, and a lone surrogate cannot be encoded at all."""
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                if "\x00" in text:
                    raise ValueError("must not contain a NUL character")
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError("is not valid Unicode text (a lone surrogate)") from None
        return value

    @field_validator("report_to")
    @classmethod
    def reporters_known_and_installed(cls, reporters: list[str]) -> list[str]:
        """A logger transformers does not know, or one that is not installed, is named now, not after the model
        has loaded. "none" means no logger (it is dropped)."""
        known = ", ".join(["none", *REPORTERS])
        chosen: list[str] = []
        for name in reporters:
            if name == "none":
                continue
            reporter = REPORTERS.get(name)
            if reporter is None:
                raise ValueError(f"unknown metrics logger {name!r}; choose from {known}")
            if not any(importlib.util.find_spec(module) for module in reporter.modules):
                raise ValueError(f"{name} is not installed: pip install {reporter.modules[0]}")
            if name not in chosen:
                chosen.append(name)
        return chosen

    @property
    def effective_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return (LORA_LEARNING_RATE if self.lora else FULL_FINE_TUNING_LEARNING_RATE)[self.method]


def read_yaml(path: Path) -> dict[str, Any]:
    """The settings in a YAML file (keys as in TrainConfig; dashes allowed, e.g. learning-rate)."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings, not {type(loaded).__name__}")
    return {str(key).replace("-", "_"): value for key, value in loaded.items()}


def build_config(*layers: dict[str, Any]) -> TrainConfig:
    """Merge layers of settings (later ones win; None values are skipped) into a checked TrainConfig."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({key: value for key, value in layer.items() if value is not None})
    try:
        return TrainConfig(**merged)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"])
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise ConfigError("invalid training settings: " + "; ".join(problems)) from None
