"""Training started from the API: each run is its own `llmfl train --run-id N` process, started by a small
scheduler so that at most MAX_CONCURRENT_RUNS of them train at once.

A separate process keeps torch (and its threads, and its memory) out of the web service, survives a
failing run, and is stopped with the same Ctrl-C (SIGINT) that leaves a resumable checkpoint.
Its output goes to OUTPUT_DIR/train.log.

The queue is the database (training/runs.py): a run waits as `queued` without a pid. The scheduler, a task
of the service, reaps the processes that ended (twice a second, so none lingers as a zombie), records how a
process that died without reporting ended, and starts the oldest waiting runs while slots are free. Each
process gets a minimal environment (`child_environment`): the service's API keys stay in the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llm_feedback_loop.models.run_folder import LOG_FILE, last_checkpoint
from llm_feedback_loop.storage.tables import utc_now
from llm_feedback_loop.training.config import REPORTERS
from llm_feedback_loop.training.runs import (
    RunStatus,
    claim_run,
    release_stale_claims,
    settle_exited,
    waiting_runs,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from llm_feedback_loop.settings import Settings
    from llm_feedback_loop.storage.tables import TrainingRun

log = logging.getLogger(__name__)

# What a training process inherits from the service: what Python, the libraries and the GPU need, and where
# the service keeps things. Exact names pass as they are (TOKENIZERS_PARALLELISM and DATABASE_URL look like
# secrets by name); a name under a prefix passes only if it does not look like a credential (HF_TOKEN does).
INHERITED_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "TZ", "LANG", "LANGUAGE",
        "TMPDIR", "TEMP", "TMP", "XDG_CACHE_HOME", "LD_LIBRARY_PATH",
        "PYTHONPATH", "PYTHONHASHSEED", "PYTHONUNBUFFERED", "PYTHONWARNINGS", "PYTHONDONTWRITEBYTECODE",
        "VIRTUAL_ENV", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",  # to reach the hub
        "TOKENIZERS_PARALLELISM", "DATABASE_URL", "CHECKPOINT_DIR", "BASE_MODEL", "MODEL_DEVICE",
        "GLIBC_TUNABLES",  # the service's malloc settings: a run keeps them (cli/memory.py)
    }
)  # fmt: skip
INHERITED_PREFIXES = (
    "LC_", "HF_", "TRANSFORMERS_", "HUGGINGFACE_HUB_", "CUDA_", "NVIDIA_", "TORCH", "PYTORCH_", "NCCL_",
    "TRITON_", "OMP_", "MKL_", "KMP_", "OPENBLAS_", "NUMEXPR_", "MALLOC_",
)  # fmt: skip
CREDENTIAL_MARKS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "COOKIE")

POLL_S = 0.5  # how often finished processes are reaped
RESCAN_S = 10.0  # how often the queue is read when nothing happened (runs queued by another service process)


def looks_like_a_credential(name: str) -> bool:
    upper = name.upper()
    return any(mark in upper for mark in CREDENTIAL_MARKS)


def child_environment(
    parent: Mapping[str, str],
    *,
    database_url: str,
    checkpoint_dir: Path,
    base_model: str | None,
    report_to: Iterable[str] = (),
) -> dict[str, str]:
    """The environment of a training process: the allowed part of `parent`, the variables of the metrics
    loggers the run reports to (a wandb run gets WANDB_API_KEY, no other run does), and the service's own
    database, checkpoint folder and base model, so the process agrees with the service that started it."""
    logger_prefixes = tuple(prefix for name in report_to if name in REPORTERS for prefix in REPORTERS[name].environment)
    environment = {
        name: value
        for name, value in parent.items()
        if name in INHERITED_NAMES
        or (name.startswith(INHERITED_PREFIXES) and not looks_like_a_credential(name))
        or (logger_prefixes and name.startswith(logger_prefixes))
    }
    environment |= {
        "DATABASE_URL": database_url,
        "CHECKPOINT_DIR": str(checkpoint_dir.resolve()),
        "TOKENIZERS_PARALLELISM": "false",
    }
    if base_model:
        environment["BASE_MODEL"] = base_model
    return environment


@dataclass
class Job:
    """A training process this service started."""

    process: subprocess.Popen[bytes]
    output_dir: Path
    stopping: bool = False  # asked to stop (SIGINT sent)


class TrainingJobs:
    """The training processes this service started, and the scheduler that starts queued runs.

    `scheduling()` runs the scheduler for as long as the service is up; `notify()` wakes it when a run was
    queued or a slot may have freed. Processes outlive the service (a restart does not kill a run)."""

    def __init__(self, database_url: str, *, poll_s: float = POLL_S) -> None:
        """`database_url`: where the processes record their runs (the service's database)."""
        self._database_url = database_url
        self._poll_s = poll_s
        self._jobs: dict[int, Job] = {}
        self._launching: set[int] = set()  # claimed, process not started yet
        self._cancelled: set[int] = set()  # stopped while launching: never to start
        self._unsettled: list[tuple[int, Job]] = []  # reaped, its row not yet checked
        self._wake = asyncio.Event()
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._settings: Settings | None = None

    def running(self) -> dict[int, int]:
        """{run id: pid} of the processes this service started that have not been reaped."""
        return {run_id: job.process.pid for run_id, job in self._jobs.items()}

    def notify(self) -> None:
        """A run was queued or stopped: read the queue now rather than at the next rescan."""
        self._wake.set()

    @contextlib.asynccontextmanager
    async def scheduling(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> AsyncIterator[None]:
        """Run the scheduler while the block runs (the service's lifetime). `settings` gives the number of slots
        (MAX_CONCURRENT_RUNS), and the checkpoint folder and base model the processes are told."""
        self._sessions, self._settings = sessions, settings
        async with sessions() as session:
            await release_stale_claims(session)
        task = asyncio.create_task(self._schedule(), name="training-scheduler")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.reap()

    async def _schedule(self) -> None:
        read_queue, last_read = True, 0.0
        while True:
            self._unsettled += self.reap()
            if self._unsettled or read_queue or time.monotonic() - last_read > RESCAN_S:
                try:
                    await self._settle()
                    await self._start_waiting()
                except Exception:  # a database hiccup must not end the scheduler; the next pass retries
                    log.exception("training scheduler: reading or updating the queue failed")
                last_read = time.monotonic()
            read_queue = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_s)
                read_queue = True
            self._wake.clear()

    def reap(self) -> list[tuple[int, Job]]:
        """Collect the exit status of the processes that ended: [(run id, its job)]."""
        exited = [(run_id, job) for run_id, job in self._jobs.items() if job.process.poll() is not None]
        for run_id, _ in exited:
            del self._jobs[run_id]
        return exited

    async def _settle(self) -> None:
        """Runs whose process exited without recording how it ended (killed, crashed at start-up) say so."""
        assert self._sessions is not None
        while self._unsettled:
            run_id, job = self._unsettled[0]
            if job.stopping:  # stopped while still loading, before the trainer could save a checkpoint
                resumable = last_checkpoint(job.output_dir) is not None
                status = RunStatus.INTERRUPTED if resumable else RunStatus.FAILED
                error = "stopped before training began" + ("" if resumable else "; start it again")
            else:
                status = RunStatus.FAILED
                error = (
                    f"the training process exited with code {job.process.returncode} without reporting; "
                    "its log has the reason"
                )
            async with self._sessions() as session:
                await settle_exited(session, run_id, job.process.pid, status, error)
            self._unsettled.pop(0)

    async def _start_waiting(self) -> None:
        assert self._sessions is not None and self._settings is not None
        free = self._settings.max_concurrent_runs - len(self._jobs)
        if free <= 0:
            return
        async with self._sessions() as session:
            for run in await waiting_runs(session, free):
                await self._start(session, run)

    async def _start(self, session: AsyncSession, run: TrainingRun) -> None:
        """Claim a waiting run, start its process and record the pid; a process that cannot start fails the run."""
        self._launching.add(run.id)
        try:
            if not await claim_run(session, run.id):
                return  # another service took it, or it was stopped
            await session.refresh(run)
            if run.id in self._cancelled:
                run.status, run.error, run.finished_at = RunStatus.INTERRUPTED, "stopped while queued", utc_now()
                run.pid = None
                await session.commit()
                return
            output_dir = Path(run.output_dir)
            try:
                process = self._spawn(run.id, output_dir, list((run.config or {}).get("report_to") or []))
            except OSError as error:
                run.status, run.finished_at, run.pid = RunStatus.FAILED, utc_now(), None
                run.error = f"could not start the training process: {error}"
                await session.commit()
                return
            self._jobs[run.id] = Job(process, output_dir)
            run.pid = process.pid
            await session.commit()
        finally:
            self._launching.discard(run.id)
            self._cancelled.discard(run.id)

    def _spawn(self, run_id: int, output_dir: Path, report_to: list[str]) -> subprocess.Popen[bytes]:
        assert self._settings is not None
        command = [sys.executable, "-m", "llm_feedback_loop", "train", "--run-id", str(run_id)]
        if last_checkpoint(output_dir) is not None:  # queued again by /resume: continue from the checkpoint
            command.append("--resume")
        output_dir.mkdir(parents=True, exist_ok=True)
        environment = child_environment(
            os.environ,
            database_url=self._database_url,
            checkpoint_dir=self._settings.checkpoint_dir,
            base_model=self._settings.base_model,
            report_to=report_to,
        )
        with (output_dir / LOG_FILE).open("ab") as log_file:
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,  # a Ctrl-C on the service's terminal is not sent to its runs
            )

    def stop(self, run: TrainingRun) -> bool:
        """Ask a run to stop after its current step, saving a checkpoint. False if no process of this machine
        that may be signalled trains it: it ended, runs on another machine, or another service is starting it."""
        job = self._jobs.get(run.id)
        if job is not None:
            if job.process.poll() is not None:
                return False
            job.stopping = True
            job.process.send_signal(signal.SIGINT)
            return True
        if run.id in self._launching:
            self._cancelled.add(run.id)
            return True
        # A queued run with a pid is being started by another service process (its pid is that service's until
        # the training process is up): never signal a service.
        if run.status != RunStatus.RUNNING or run.pid is None or run.host != socket.gethostname():
            return False
        try:  # a run another process started (`llmfl train` in a terminal, or an earlier service)
            os.kill(run.pid, signal.SIGINT)
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
