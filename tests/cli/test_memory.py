"""A training process keeps the memory torch frees for its next tensors (cli/memory.py)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from llm_feedback_loop.cli.memory import CHOSEN_MALLOC

# Allocates, fills and frees 64 MB eight times; prints whether malloc was tuned, and the page faults it took.
REUSE = """
import ctypes, resource, sys
from llm_feedback_loop.cli.memory import keep_freed_memory
print(keep_freed_memory() if sys.argv[1] == "tuned" else False)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    block = ctypes.create_string_buffer(64 * 2**20)
    del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGE = 4096


def huge_pages_always() -> bool:
    """Transparent huge pages for every mapping: 64 MB fault in as 32 pages, not 16384, and counts say little."""
    path = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return path.is_file() and "[always]" in path.read_text()


pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc" or huge_pages_always(),
    reason="glibc's malloc, counted in 4 KB pages",
)


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without the malloc settings a runner may set, plus `extra`."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    return kept | extra


def faults(mode: str, env: dict[str, str]) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", REUSE, mode], capture_output=True, text=True, check=True, env=env)
    applied, count = done.stdout.split()
    return applied, int(count)


def test_freed_memory_is_reused_not_faulted_in_again() -> None:
    applied, tuned = faults("tuned", clean_environment())
    assert applied == "True"
    _, plain = faults("plain", clean_environment())
    block = 64 * 2**20 // PAGE
    assert plain > 6 * block  # each block mapped anew: its pages faulted in (zeroed) every time
    assert tuned < 3 * block  # the first block's pages, kept for the next ones


@pytest.mark.parametrize(
    "chosen", [{name: "65536"} for name in CHOSEN_MALLOC] + [{"GLIBC_TUNABLES": "glibc.malloc.mmap_max=8"}]
)
def test_malloc_settings_chosen_by_the_environment_are_left_alone(chosen: dict[str, str]) -> None:
    assert faults("tuned", clean_environment(**chosen))[0] == "False"


def test_unrelated_malloc_settings_do_not_turn_it_off() -> None:
    env = clean_environment(MALLOC_ARENA_MAX="2", GLIBC_TUNABLES="glibc.pthread.rseq=0")
    assert faults("tuned", env)[0] == "True"
