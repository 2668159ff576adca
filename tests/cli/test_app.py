"""The process-wide settings of every `llmfl` command (cli/app.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Allocates, fills and frees 64 MB eight times; prints the page faults it took.
REUSE = """
import ctypes, resource, sys
from llm_feedback_loop.cli.app import keep_freed_memory
print(keep_freed_memory() if sys.argv[1] == "tuned" else False)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    block = ctypes.create_string_buffer(64 * 2**20)
    del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", REUSE, mode], capture_output=True, text=True, check=True, env=env)
    applied, count = done.stdout.split()
    return applied, int(count)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_tensors_memory_is_reused_not_faulted_in_again() -> None:
    applied, tuned = faults("tuned")
    assert applied == "True"
    _, plain = faults("plain")
    page = 64 * 2**20 // 4096
    assert plain > 6 * page  # each block mapped anew: its pages faulted in (zeroed) every time
    assert tuned < 3 * page  # the first block's pages, kept for the next ones


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_malloc_tuned_by_the_environment_is_left_alone() -> None:
    import os

    applied, _ = faults("tuned", env=os.environ | {"MALLOC_ARENA_MAX": "2"})
    assert applied == "False"
