"""The service a loop talks to: one given by URL, or `llmfl serve` started for the loop's duration on a
free loopback port, with the same settings (database, base model) as the loop itself."""

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


class ServiceStartError(RuntimeError):
    """The service did not come up; the message holds the end of its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def own_service(log_path: Path, ready_s: float = 120.0) -> Iterator[str]:
    """Run `llmfl serve` on a free port; yield its base URL once /health answers; stop it at the end."""
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llm_feedback_loop",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=os.environ.copy(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        try:
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() - started > ready_s:
                    tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
                    raise ServiceStartError(f"the service did not start (log {log_path}):\n{tail}")
                time.sleep(0.3)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
