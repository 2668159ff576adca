"""Training started from the API: each run is its own `llmfl train --run-id N` process.

A separate process keeps torch (and its threads, and its memory) out of the web service, survives a
failing run, and is stopped with the same Ctrl-C (SIGINT) that leaves a resumable checkpoint.
Its output goes to OUTPUT_DIR/train.log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

LOG_FILE = "train.log"


class TrainingJobs:
    """The training processes this service started (so finished ones are reaped, not left as zombies)."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    def launch(self, run_id: int, output_dir: Path, *, resume: bool = False) -> int:
        output_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "llm_feedback_loop", "train", "--run-id", str(run_id)]
        if resume:
            command.append("--resume")
        environment = os.environ | {"DATABASE_URL": self._database_url, "TOKENIZERS_PARALLELISM": "false"}
        with (output_dir / LOG_FILE).open("ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,  # a Ctrl-C on the service's terminal is not sent to its runs
            )
        self._processes[run_id] = process
        return process.pid

    def reap(self) -> None:
        """Collect the exit status of finished runs (their own rows already say how they ended)."""
        for run_id, process in list(self._processes.items()):
            if process.poll() is not None:
                del self._processes[run_id]

    def stop(self, pid: int) -> bool:
        """Ask a run to stop after its current step, saving a checkpoint. False if it is not running."""
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return False
        return True


def log_tail(output_dir: Path, lines: int) -> str:
    """The last `lines` lines of a run's log, progress-bar redraws folded to their last state."""
    path = output_dir / LOG_FILE
    if not path.is_file():
        return ""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 256 * 1024))
        text = handle.read().decode("utf-8", errors="replace")
    folded = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(folded[-lines:])
