"""Bootstrap intervals over prompts, on fixed inputs: seeded, around the mean, paired for a gain."""

from __future__ import annotations

import pytest

from llm_feedback_loop.evaluation.intervals import Interval, bootstrap_mean, paired_gain, sign_test


def test_an_interval_holds_the_mean_is_seeded_and_narrows_with_more_prompts() -> None:
    scores = [1.0] * 13 + [0.0] * 29  # 13 of 42 held-out answers comply (the base of the demo's task)
    interval = bootstrap_mean(scores)
    assert interval == bootstrap_mean(scores)  # the same answers always give the same interval
    assert interval.mean == pytest.approx(13 / 42) and interval.low < interval.mean < interval.high
    assert 0.15 < interval.low < 0.2 and 0.42 < interval.high < 0.47  # about ±14 points on 42 prompts
    wider = bootstrap_mean(scores * 4)  # 168 prompts, the same share
    assert wider.half_width < interval.half_width * 0.6


def test_values_all_alike_have_no_spread_and_none_are_refused() -> None:
    assert bootstrap_mean([0.5] * 10) == Interval(0.5, 0.5, 0.5)
    assert bootstrap_mean([1.0]) == Interval(1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="no values"):
        bootstrap_mean([])


def test_a_paired_gain_is_tighter_than_two_separate_intervals() -> None:
    base = [1.0] * 13 + [0.0] * 29
    candidate = [1.0] * 21 + [0.0] * 21  # the same 13 plus 8 more: 8 wins, no loss
    gain = paired_gain(candidate, base)
    assert gain.mean == pytest.approx(8 / 42) and gain.low > 0
    separate = bootstrap_mean(candidate).low - bootstrap_mean(base).high
    assert separate < 0 < gain.low  # unpaired intervals overlap; the paired gain is clearly above zero
    assert gain.bounds("gain") == {"gain_low": round(gain.low, 4), "gain_high": round(gain.high, 4)}


def test_a_gain_of_one_prompt_in_42_is_not_shown() -> None:
    base = [0.0] * 42
    assert paired_gain([1.0] + [0.0] * 41, base).low == 0.0  # one lucky answer: the interval reaches 0
    with pytest.raises(ValueError, match="not the same prompts"):
        paired_gain([1.0], [0.0, 1.0])


def test_the_sign_test_on_known_counts() -> None:
    assert sign_test(7, 7) == 1 / 128  # every held-out pair ranked right: 1 chance in 128 by luck
    assert sign_test(5, 6) == pytest.approx(7 / 64)
    assert sign_test(0, 9) == 1.0 and sign_test(0, 0) == 1.0
    assert sign_test(7, 9) == pytest.approx(46 / 512)
    with pytest.raises(ValueError, match="not a count"):
        sign_test(4, 3)
