"""Helpers the benchmarks share: a free loopback port, nearest-rank percentiles, PASS/MISS verdicts, the
environment of a benchmarked child process."""

from __future__ import annotations

import math
import os
import socket

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of an ascending list; NaN when empty."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def offline_env(threads: int, database_url: str) -> dict[str, str]:
    """This process's environment for a child: `threads` torch threads, nothing fetched from the hub,
    unbuffered output, and its own database."""
    return dict(os.environ) | {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url,
    }
