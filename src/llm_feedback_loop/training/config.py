"""The settings of a training run: defaults for small models on small data, a YAML file, then flags.

Precedence, lowest first: these defaults (and BASE_MODEL / CHECKPOINT_DIR from `.env`), the YAML file
given with `--config`, the command's flags. The effective settings are saved with the run.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from llm_feedback_loop.training.methods import method_names, method_of, method_settings

Method = Literal[method_names()]  # type: ignore[valid-type]  # the method modules found (training/methods/)
METHODS: tuple[str, ...] = method_names()


@dataclass(frozen=True)
class Flag:
    """How a setting is spelled on the command line, where not as its field name (`register_output` is
    `--register/--no-register`). Kept in the field's Annotated metadata: the API's schema does not show it."""

    name: str


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


SEED_MOST = 2**32 - 1  # numpy's (and so transformers' set_seed's) largest seed


class ConfigError(ValueError):
    """Settings that cannot be used; the message names the setting."""


class CommonConfig(BaseModel):
    """The settings every method shares; TrainConfig adds the methods' own. Unknown keys are refused (a typo
    in a YAML file must not pass silently). Each field's description is its `llmfl train` flag's help."""

    model_config = ConfigDict(extra="forbid")

    method: Method = Field(description="The training method (training/methods/).")
    # What to train on: an export (JSONL file or datasets folder), or export from the database first.
    data: str | None = Field(default=None, description="An `llmfl export` output: JSONL file or datasets folder.")
    from_db: bool = Field(default=False, description="Export the stored feedback the method needs, then train on it.")
    strategy: str = Field(default="best-vs-rest", description="--from-db: how rankings become pairs.")
    test_size: float = Field(default=0.1, ge=0.0, lt=1.0, description="--from-db: share of prompts held out.")
    split_seed: int = Field(default=0, ge=0, le=SEED_MOST, description="--from-db: seed of the train/test split.")
    # What to start from: a registered version (id or name), a hub id or a folder. None: the active version.
    model: str | None = Field(
        default=None,
        description="Start from: a version (id or name), a hub id, a folder, or an earlier run's output folder. "
        "Default: the active version.",
    )
    output_dir: str | None = Field(
        default=None, description="Where the run writes (default CHECKPOINT_DIR/METHOD-TIMESTAMP)."
    )
    name: str | None = Field(default=None, description="Name of the registered version (default: from the run).")
    description: str | None = Field(default=None, description="A note kept with the registered version.")
    register_output: Annotated[bool, Flag("register")] = Field(
        default=True, description="Register the result as a candidate version."
    )

    epochs: float = Field(default=2.0, gt=0, description="Passes over the data.")
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
    warmup_ratio: float = Field(default=0.0, ge=0.0, lt=1.0, description="Share of the steps warming up.")
    weight_decay: float = Field(default=0.0, ge=0.0, description="AdamW weight decay.")
    seed: int = Field(default=42, ge=0, le=SEED_MOST, description="Seed of initialisation and shuffling.")

    lora: bool = Field(default=False, description="Train a LoRA adapter (PEFT) instead of every weight.")
    merge: bool = Field(default=False, description="With --lora: save the base with the adapter merged in.")
    lora_r: int = Field(default=16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(default=32, ge=1, description="LoRA scaling (alpha).")
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0, description="LoRA dropout.")
    lora_target_modules: str | list[str] = Field(
        default="all-linear", description="Modules LoRA adapts (PEFT's target_modules)."
    )
    lora_top_layers: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="With --lora: adapt only this share of the decoder's layers, the top ones (0.4 of "
        "SmolLM2's 30: the top 12). Default: every layer (GRPO/RLOO: 0.4).",
    )

    chat_template: bool = Field(default=True, description="Plain-text rows become chat messages (user, assistant).")

    logging_steps: int = Field(default=5, ge=1, description="Steps between logged losses.")
    save_steps: int = Field(default=50, ge=1, description="Steps between checkpoints.")
    save_total_limit: int | None = Field(default=2, ge=1, description="Checkpoints kept (the newest).")
    evaluate: bool = Field(default=True, description="Evaluate on the test split when there is one.")
    eval_steps: int = Field(
        default=0,
        ge=0,
        description="Early stopping: evaluate on the test split before the first step and every this many steps, "
        "keep the weights of the lowest held-out loss (those before training included), and stop after --patience "
        "evaluations without a lower one. 0: evaluate once, at the end.",
    )
    patience: int = Field(default=2, ge=1, description="Early stopping: evaluations without a lower held-out loss.")
    report_to: list[str] = Field(
        default_factory=list,
        description="Metrics loggers transformers reports to: tensorboard, wandb, mlflow, ...; default none.",
    )
    device: str = Field(default="auto", description="auto | cpu | cuda (choose a GPU with CUDA_VISIBLE_DEVICES).")
    bf16: bool | None = Field(
        default=None,
        description="Mixed precision in bfloat16 (default: on a GPU that has it; on a CPU with bfloat16 "
        "instructions, for DPO).",
    )

    @model_validator(mode="before")
    @classmethod
    def method_defaults(cls, data: Any) -> Any:
        """The settings a method changes from the common defaults (e.g. LoRA for GRPO), where a run does not
        set them itself."""
        if isinstance(data, dict) and isinstance(data.get("method"), str) and data["method"] in METHODS:
            defaults = dict(method_of(data["method"]).defaults)
            if "lora_target_modules" in data:  # modules chosen by the run: so are their layers
                defaults.pop("lora_top_layers", None)
            data = {key: value for key, value in defaults.items() if key not in data} | data
        return data

    @model_validator(mode="after")
    def check_source(self) -> CommonConfig:
        if self.data is None and not self.from_db:
            raise ValueError("give --data PATH (an export) or --from-db")
        if self.data is not None and self.from_db:
            raise ValueError("give either --data or --from-db, not both")
        if self.merge and not self.lora:
            raise ValueError("--merge only applies with --lora")
        targets = self.lora_target_modules
        if self.lora_top_layers is not None and isinstance(targets, str) and targets != "all-linear":
            raise ValueError(
                "lora_top_layers cannot be combined with a pattern in lora_target_modules (the pattern names its "
                "layers); give one or the other"
            )
        method_of(self.method).check(self)
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
        rates = method_of(self.method).learning_rates
        return rates.lora if self.lora else rates.full


# Every setting of a run: the common ones and those the methods declare (dpo.py's sft_weight, ...), flat, as
# YAML files, the API and the flags spell them.
TrainConfig = create_model(
    "TrainConfig",
    __base__=CommonConfig,
    __module__=__name__,
    __doc__="Every setting of a run: CommonConfig's and the training methods' own (training/methods/).",
    **method_settings(),
)


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
