"""Start `llmfl` servers as real processes on free loopback ports, as a user would."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from llm_feedback_loop.loop.service import ServiceStartError, llmfl_process


@contextlib.contextmanager
def running_llmfl(
    args: list[str], workdir: Path, env: dict[str, str] | None = None, ready_s: float = 120
) -> Iterator[str]:
    """Run `python -m llm_feedback_loop ARGS --port PORT`; yield its base URL once /health says ok. Its
    DATABASE_URL is only the one `env` gives (never the developer's)."""
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"} | (env or {})
    try:
        with llmfl_process(args, workdir, environment, ready_s, cwd=workdir) as base:
            yield base
    except ServiceStartError as error:
        raise AssertionError(str(error)) from None
