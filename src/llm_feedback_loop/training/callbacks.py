"""Trainer callbacks of ours: a graceful stop on Ctrl-C (leaving a checkpoint to resume from) and a
metrics log (`metrics.jsonl` in the run's folder) that the CLI, the API and the web page read."""

from __future__ import annotations

import json
import math
import signal
import threading
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


def finite(metrics: dict[str, Any]) -> dict[str, Any]:
    """NaN and infinities as None: JSON (and PostgreSQL's json type) has no spelling for them."""
    return {
        key: None if isinstance(value, float) and not math.isfinite(value) else value for key, value in metrics.items()
    }


class StopOnSignal(TrainerCallback):
    """The first Ctrl-C (SIGINT) or SIGTERM ends training after the current step and saves a checkpoint;
    a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.stopped = False
        self._previous: dict[int, Any] = {}

    def _request_stop(self, signum: int, frame: Any) -> None:
        if self.stopped and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.stopped = True
        print("\nstopping after this step and saving a checkpoint (Ctrl-C again to stop now)", flush=True)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._request_stop)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.stopped:
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


class SkipFinalCheckpoint(TrainerCallback):
    """transformers saves a checkpoint (weights and optimizer state: 3× the model) when training ends, on
    top of the final model we save anyway; a completed run never resumes, so that write is skipped."""

    def __init__(self, stopper: StopOnSignal) -> None:
        self.stopper = stopper

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        at_end = state.max_steps > 0 and state.global_step >= state.max_steps
        if at_end and not self.stopper.stopped and state.global_step % args.save_steps != 0:
            control.should_save = False
        return control


class MetricsLog(TrainerCallback):
    """Appends every log entry (loss, learning rate, epoch, step) to a JSON Lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or not state.is_world_process_zero:
            return
        entry = {"step": state.global_step, "epoch": state.epoch, **logs}
        entry = {
            key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in entry.items()
        }
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, default=float) + "\n")
