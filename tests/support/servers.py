"""Start `llmfl` servers as real processes on free loopback ports, as a user would."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.support.postgres import free_port


@contextlib.contextmanager
def running_llmfl(
    args: list[str], workdir: Path, env: dict[str, str] | None = None, ready_s: float = 120
) -> Iterator[str]:
    """Run `python -m llm_feedback_loop ARGS --port PORT`; yield its base URL once /health says ok."""
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"} | (env or {})
    log_path = workdir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "llm_feedback_loop", *args, "--port", str(port), "--log-level", "warning"],
            cwd=workdir,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                        if b'"ok"' in response.read():
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() - started > ready_s:
                    raise AssertionError(f"server did not start: {log_path.read_text()[-3000:]}")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
