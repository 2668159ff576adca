"""Confidence intervals of held-out scores, by the bootstrap over prompts.

A held-out evaluation of 42 prompts moves in steps of 2.4 points, so a score alone cannot tell a real gain
from luck. Each interval here resamples the prompts with replacement (seeded: the same answers always give the
same interval) and takes the percentiles of the resampled means. A candidate's gain over its base is *paired*:
both answered the same prompts, so the per-prompt differences are resampled together, which is much tighter
than two separate intervals.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    def bounds(self, name: str) -> dict[str, float]:
        """`NAME_low` and `NAME_high`, as the metrics keep them (numbers, not a list: the registry keeps
        numbers)."""
        return {f"{name}_low": round(self.low, 4), f"{name}_high": round(self.high, 4)}

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def bootstrap_mean(
    values: Sequence[float], *, resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0
) -> Interval:
    """The mean of `values` and its bootstrap percentile interval; a single value (or none) has no spread."""
    count = len(values)
    if count == 0:
        raise ValueError("no values to bootstrap")
    mean = sum(values) / count
    if count == 1:
        return Interval(mean, mean, mean)
    generator = random.Random(seed)
    means = sorted(sum(generator.choices(values, k=count)) / count for _ in range(resamples))
    tail = (1 - confidence) / 2
    low = means[int(tail * (resamples - 1))]
    high = means[round((1 - tail) * (resamples - 1))]
    return Interval(mean, low, high)


def paired_gain(candidate: Sequence[float], base: Sequence[float], *, seed: int = 0) -> Interval:
    """The candidate's mean gain over the base on the same prompts, with its interval."""
    if len(candidate) != len(base):
        raise ValueError(f"{len(candidate)} candidate scores against {len(base)} base scores: not the same prompts")
    return bootstrap_mean([ours - theirs for ours, theirs in zip(candidate, base, strict=True)], seed=seed)


def sign_test(right: int, total: int) -> float:
    """The chance of at least `right` of `total` pairs ranked right by a coin toss (one-sided exact sign test):
    how likely a model that learnt nothing is to rank held-out pairs this well."""
    if not 0 <= right <= total:
        raise ValueError(f"{right} right of {total}: not a count of pairs")
    return sum(math.comb(total, k) for k in range(right, total + 1)) / 2**total
