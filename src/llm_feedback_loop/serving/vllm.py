"""vLLM as serve-model's engine (`llmfl serve-model --engine vllm`): for GPUs and scale.

For the version to serve, a vLLM OpenAI-compatible server is started as a child process on a free loopback
port with a random API key of its own (only serve-model talks to it), and a `RemoteEngine` sends it our
requests as token ids. A LoRA adapter version is served by vLLM's LoRA support: `--model BASE --enable-lora
--lora-modules NAME=ADAPTER`, the adapter's rank as `--max-lora-rank`; any other version as `--model SOURCE`.
A switch (`/admin/reload`, the registry watch) starts the new version's server beside the old one, as the
in-process engine loads the new model beside the old: `VLLM_GPU_MEMORY_UTILIZATION` (default 0.45) leaves room
for both on one GPU. More vLLM options: `VLLM_EXTRA_ARGS` (split like a shell line).

vLLM runs where it is installed (Linux, an NVIDIA GPU: `pip install vllm`, best in an environment of its own,
since it pins its own torch). Without it, `--engine vllm` says how to install it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from llm_feedback_loop.models.loader import ModelLoadError, adapter_base, load_tokenizer, resolve_source

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "--engine vllm needs vLLM, which is not installed: on a Linux machine with an NVIDIA GPU, `pip install vllm` "
    "in a virtual environment of its own (it pins its own torch), or use the in-process engine, --engine transformers"
)


def vllm_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


@dataclass(frozen=True)
class VLLMPlan:
    """What the vLLM server loads and the name requests use."""

    model: str  # the base model (a LoRA version) or the model itself
    served_name: str  # what requests name: the adapter's module name, or the model's served name
    adapter: str | None = None
    lora_rank: int | None = None


def plan_for(source: str, name: str) -> VLLMPlan:
    """How vLLM serves the version at `source` (a folder, hub id or the default model), named `name`."""
    resolved = resolve_source(source)
    folder = Path(resolved)
    base = adapter_base(folder) if folder.is_dir() else None
    served = safe_name(name)
    if base is None:
        return VLLMPlan(model=resolved, served_name=served)
    rank = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get("r")
    return VLLMPlan(model=resolve_source(base), served_name=served, adapter=resolved, lora_rank=rank)


def safe_name(name: str) -> str:
    """A served-model / LoRA module name vLLM takes (`NAME=PATH` splits on `=`)."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "model"


def vllm_command(plan: VLLMPlan, port: int, api_key: str) -> list[str]:
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--host", "127.0.0.1", "--port", str(port), "--api-key", api_key,
        "--model", plan.model,
        "--gpu-memory-utilization", os.environ.get("VLLM_GPU_MEMORY_UTILIZATION", "0.45"),
    ]  # fmt: skip
    if plan.adapter is None:
        command += ["--served-model-name", plan.served_name]
    else:
        command += ["--enable-lora", "--lora-modules", f"{plan.served_name}={plan.adapter}"]
        if plan.lora_rank:
            command += ["--max-lora-rank", str(max(8, int(plan.lora_rank)))]
    return command + shlex.split(os.environ.get("VLLM_EXTRA_ARGS", ""))


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_vllm(source: str, name: str, ready_s: float = 900.0) -> tuple[object, str]:
    """Start vLLM's server for the version at `source`; returns (its RemoteEngine, its base URL). Raises
    ModelLoadError (with the end of its log) when vLLM is missing or the server does not come up."""
    from llm_feedback_loop.serving.remote import RemoteEngine

    if not vllm_installed():
        raise ModelLoadError(INSTALL_HINT)
    plan = plan_for(source, name)
    port, key = free_port(), secrets.token_urlsafe(24)
    log_path = Path(tempfile.gettempdir()) / f"llmfl-vllm-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(vllm_command(plan, port, key), stdout=log_file, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_s
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise ModelLoadError(f"vLLM did not start for {name} (log {log_path}):\n{tail}")
        time.sleep(1.0)
    log.warning("vLLM serves %s at %s (log %s)", name, base, log_path)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()

    tokenizer = load_tokenizer(plan.adapter or plan.model)
    config_file = Path(plan.model) / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    context = int(config.get("max_position_embeddings") or getattr(tokenizer, "model_max_length", 2048))
    vocabulary = int(config.get("vocab_size") or len(tokenizer))
    engine = RemoteEngine(base, plan.served_name, tokenizer, context, vocabulary, api_key=key, on_stop=stop)
    return engine, base
