"""Where a run keeps what: the files of a run's output folder (light to import: the API reads them)."""

from __future__ import annotations

from pathlib import Path

CONFIG_FILE = "run.yaml"  # the effective settings
METRICS_FILE = "metrics.jsonl"  # every logged loss, learning rate, ...
MODEL_FOLDER = "model"  # the trained model (or LoRA adapter) and its tokenizer
MERGED_BASE_FOLDER = "base"  # only when the parent was a LoRA adapter: the parent merged into its base
ERROR_FILE = "error.log"  # the traceback of a failure inside the libraries


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest `checkpoint-N` folder of a run, or None."""
    from transformers.trainer_utils import get_last_checkpoint

    return Path(found) if output_dir.is_dir() and (found := get_last_checkpoint(str(output_dir))) else None
