"""The service a loop talks to: one given by URL, or `llmfl serve` started for the loop's duration on a
free loopback port, with the same settings (database, base model) as the loop itself: its environment is
built from the loop's Settings (`Settings.environment()`), never from writes to this process's."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from llm_feedback_loop.settings import Settings


class ServiceStartError(RuntimeError):
    """The service did not come up; the message holds the end of its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def llmfl_process(
    args: list[str],
    log_folder: Path,
    env: dict[str, str] | None = None,
    ready_s: float = 120.0,
    cwd: Path | None = None,
) -> Iterator[str]:
    """Run `python -m llm_feedback_loop ARGS --port PORT` (`serve` or `serve-model`) on a free loopback port in
    the folder `cwd` (default: this one), its output in LOG_FOLDER/server-PORT.log; yield its base URL once
    /health says ok; stop it at the end."""
    port = free_port()
    log_folder.mkdir(parents=True, exist_ok=True)
    log_path = log_folder / f"server-{port}.log"
    command = [sys.executable, "-m", "llm_feedback_loop", *args, "--port", str(port), "--log-level", "warning"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        try:
            while True:
                try:
                    if b'"ok"' in httpx.get(f"{base}/health", timeout=2).content:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() - started > ready_s:
                    tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
                    raise ServiceStartError(f"the service did not start (log {log_path}):\n{tail}")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def own_service(folder: Path, settings: Settings) -> contextlib.AbstractContextManager[str]:
    """`llmfl serve` with these settings, for a loop; its log in FOLDER."""
    return llmfl_process(["serve", "--host", "127.0.0.1"], folder, os.environ | settings.environment())
