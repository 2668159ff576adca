"""Deterministic train/test split by a hash of the prompt: one prompt never lands on both sides."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Literal

Split = Literal["train", "test"]


def position_of(prompt_hash: str, seed: int = 0) -> float:
    """Where a prompt falls in [0, 1) for `seed`: the same prompt and seed always fall in the same place."""
    digest = hashlib.sha256(f"{seed}:{prompt_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(prompt_hash: str, test_size: float, seed: int = 0) -> Split:
    """'test' for about `test_size` of all prompts, the same answer for the same prompt and seed."""
    if test_size <= 0.0:
        return "train"
    return "test" if position_of(prompt_hash, seed) < test_size else "train"


def exact_test_prompts(prompt_hashes: Iterable[str], test_size: float, seed: int = 0) -> set[str]:
    """The prompts held out when exactly `test_size` of them must be (rounded; at least one of two or more, and
    never all): those that fall first. A hash split of 20 prompts holds out anywhere from none to 8 of them; a
    small export that needs its test split (early stopping on it) asks for this one."""
    hashes = sorted(set(prompt_hashes), key=lambda prompt_hash: position_of(prompt_hash, seed))
    if test_size <= 0.0 or len(hashes) < 2:
        return set()
    count = min(len(hashes) - 1, max(1, round(test_size * len(hashes))))
    return set(hashes[:count])
