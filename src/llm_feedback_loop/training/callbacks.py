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


class KeepBest(TrainerCallback):
    """Early stopping on the held-out split: after each evaluation (the first before any step, with
    `eval_on_start`), the trained weights of the lowest `eval_loss` so far are kept in memory; training stops
    after `patience` evaluations without a lower one, and the kept weights are put back when it ends.

    transformers' EarlyStoppingCallback needs `load_best_model_at_end`, which writes a checkpoint (weights and
    optimizer state) at every evaluation and never counts the weights before the first step as a candidate. Here
    the start is one: a run whose held-out loss never falls below it ends with the weights it started from, and
    says so (`best_step` 0). Only the parameters that train are copied (a LoRA adapter's: a few MB)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_loss: float | None = None
        self.best_step: int | None = None
        self.losses: list[tuple[int, float]] = []
        self.stopped_at: int | None = None
        self._kept: dict[str, Any] | None = None
        self._since_best = 0

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        loss = (metrics or {}).get("eval_loss")
        model = kwargs.get("model")
        if not isinstance(loss, float) or not math.isfinite(loss) or model is None:
            return control
        self.losses.append((state.global_step, loss))
        if self.best_loss is None or loss < self.best_loss:
            self.best_loss, self.best_step, self._since_best = loss, state.global_step, 0
            self._kept = {
                name: parameter.detach().clone()
                for name, parameter in model.named_parameters()
                if parameter.requires_grad
            }
        else:
            self._since_best += 1
            if self._since_best >= self.patience and state.global_step < state.max_steps:
                self.stopped_at = state.global_step
                control.should_training_stop = True
        return control

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        model = kwargs.get("model")
        if self._kept is None or model is None or self.best_step == state.global_step:
            return
        import torch

        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name in self._kept:
                    parameter.copy_(self._kept[name])

    def summary(self) -> dict[str, Any]:
        """The run's figures of it: the step whose weights were kept, its held-out loss, where training stopped
        early (absent: it ran its steps), and the held-out loss of each evaluation."""
        if self.best_step is None:
            return {}
        figures: dict[str, Any] = {
            "best_step": self.best_step,
            "best_eval_loss": self.best_loss,
            "eval_losses": [[step, round(loss, 4)] for step, loss in self.losses],
        }
        if self.stopped_at is not None:
            figures["stopped_early_at"] = self.stopped_at
        return figures
