"""Agreement between annotators who ranked the same answers: for two rankings, the share of answer pairs
they put in the same order (1.0 identical, 0.0 reversed); for a task, the mean over pairs of annotators."""

from __future__ import annotations

from itertools import combinations


def pair_agreement(first: list[int], second: list[int]) -> float:
    """Share of answer pairs two rankings (answer indices, best first) order the same way."""
    position_a = {answer: place for place, answer in enumerate(first)}
    position_b = {answer: place for place, answer in enumerate(second)}
    pairs = list(combinations(sorted(position_a), 2))
    if not pairs:
        return 1.0
    same = sum((position_a[x] < position_a[y]) == (position_b[x] < position_b[y]) for x, y in pairs)
    return same / len(pairs)


def task_agreement(rankings: list[list[int]]) -> float | None:
    """Mean pairwise agreement of the annotators' rankings of one task; None below two rankings."""
    pairs = list(combinations(rankings, 2))
    if not pairs:
        return None
    return sum(pair_agreement(a, b) for a, b in pairs) / len(pairs)
