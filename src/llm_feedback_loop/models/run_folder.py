"""Where a run keeps what: the files of a run's output folder (light to import: the API reads them)."""

from __future__ import annotations

import re
from pathlib import Path

CONFIG_FILE = "run.yaml"  # the effective settings
METRICS_FILE = "metrics.jsonl"  # every logged loss, learning rate, ...
MODEL_FOLDER = "model"  # the trained model (or LoRA adapter) and its tokenizer
MERGED_BASE_FOLDER = "base"  # only when the parent was a LoRA adapter: the parent merged into its base
ERROR_FILE = "error.log"  # the traceback of a failure inside the libraries
LOG_FILE = "train.log"  # the output of a run started by the service

CHECKPOINT = re.compile(r"checkpoint-(\d+)")  # the Trainer's folders, as transformers' get_last_checkpoint reads them


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest `checkpoint-N` folder of a run, or None. The same choice as transformers'
    `get_last_checkpoint`, without importing transformers (seconds) into the service."""
    if not output_dir.is_dir():
        return None
    steps = {
        int(found.group(1)): path
        for path in output_dir.iterdir()
        if (found := CHECKPOINT.fullmatch(path.name)) and path.is_dir()
    }
    return steps[max(steps)] if steps else None
