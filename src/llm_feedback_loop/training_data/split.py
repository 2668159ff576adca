"""Deterministic train/test split by a hash of the prompt: one prompt never lands on both sides."""

from __future__ import annotations

import hashlib
from typing import Literal

Split = Literal["train", "test"]


def split_of(prompt_hash: str, test_size: float, seed: int = 0) -> Split:
    """'test' for about `test_size` of all prompts, the same answer for the same prompt and seed."""
    if test_size <= 0.0:
        return "train"
    digest = hashlib.sha256(f"{seed}:{prompt_hash}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if position < test_size else "train"
