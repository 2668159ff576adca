"""The promotion rule: a win rate at least the threshold, no shared metric falling more than allowed, and a
measured gain whose interval excludes zero."""

from __future__ import annotations

import pytest

from llm_feedback_loop.models.promotion import decide, points_dropped


def evaluation(path: str, **metrics: float) -> dict:
    return {"data": {"path": path}, "metrics": metrics}


def test_the_rule() -> None:
    parent = {"evaluations": [evaluation("t.jsonl", bleu=20.0, rouge_l=40.0)]}
    good = {"evaluations": [evaluation("t.jsonl", bleu=19.5, rouge_l=45.0, win_rate=0.6)]}
    assert decide(good, parent, min_win_rate=0.55, max_drop=1.0).promote
    worse = {"evaluations": [evaluation("t.jsonl", bleu=15.0, rouge_l=45.0, win_rate=0.7)]}
    decision = decide(worse, parent, min_win_rate=0.55, max_drop=1.0)
    assert not decision.promote and "bleu" in decision.reasons[0]
    losing = {"evaluations": [evaluation("t.jsonl", win_rate=0.5)]}
    assert "win rate 0.500 < 0.55" in decide(losing, parent, 0.55, 1.0).reasons
    other_data = {"evaluations": [evaluation("other.jsonl", bleu=1.0, win_rate=0.9)]}
    assert decide(other_data, parent, 0.55, 1.0).promote  # metrics on different data are not compared
    assert not decide({}, parent, 0.55, 1.0).promote  # never evaluated


def test_a_measured_gain_must_exclude_zero() -> None:
    parent = {"evaluations": [evaluation("task:concise", task_score=0.3, coherence=1.0)]}
    shown = evaluation("task:concise", task_score=0.5, coherence=1.0, win_rate=0.6, gain=0.2, gain_low=0.07,
                       gain_high=0.33)  # fmt: skip
    assert decide({"evaluations": [shown]}, parent, 0.55, 5.0).promote
    luck = evaluation("task:concise", task_score=0.36, coherence=1.0, win_rate=0.56, gain=0.06, gain_low=0.0,
                      gain_high=0.14)  # fmt: skip
    decision = decide({"evaluations": [luck]}, parent, 0.55, 5.0)
    assert not decision.promote
    assert decision.reasons == [
        "the task score's gain on task:concise (+6.0 points) is not shown: its 95% interval [+0.0, +14.0] is not "
        "above +0"
    ]
    assert decide({"evaluations": [luck]}, parent, 0.55, 5.0, min_gain=-100).promote  # the check turned off


def test_a_gain_the_sampled_answers_do_not_show_is_refused() -> None:
    base = evaluation("task:bullets", task_score=0.2, sampled_task_score=0.2, sampled_coherence=0.9)
    parent = {"evaluations": [base]}
    greedy_only = evaluation("task:bullets", task_score=0.5, win_rate=0.7, gain=0.3, gain_low=0.15, gain_high=0.45,
                             sampled_task_score=0.23, sampled_coherence=0.9, sampled_gain=0.03, sampled_gain_low=-0.02,
                             sampled_gain_high=0.08)  # fmt: skip
    decision = decide({"evaluations": [greedy_only]}, parent, 0.55, 5.0)
    assert not decision.promote
    assert decision.reasons == [
        "the sampled answers' task score gain on task:bullets (+3.0 points) is not shown: its 95% interval "
        "[-2.0, +8.0] is not above +0"
    ]
    shown_but_incoherent = {"sampled_gain_low": 0.01, "sampled_coherence": 0.8}
    incoherent = greedy_only | {"metrics": greedy_only["metrics"] | shown_but_incoherent}
    decision = decide({"evaluations": [incoherent]}, parent, 0.55, 5.0)
    assert decision.reasons == ["sampled_coherence on task:bullets dropped 10.00 points (more than 5.0)"]


@pytest.mark.parametrize(("before", "after"), [(0.9167, 0.8667), (0.9333, 0.8833)])  # 6 of 120 answers either way
def test_a_drop_of_exactly_the_allowed_points_is_allowed(before: float, after: float) -> None:
    parent = {"evaluations": [evaluation("task:concise", task_score=0.3, sampled_coherence=before)]}
    candidate = evaluation("task:concise", task_score=0.6, sampled_coherence=after, win_rate=0.8, gain=0.3,
                           gain_low=0.15, gain_high=0.45)  # fmt: skip
    assert points_dropped(before, after) == 5.0
    assert decide({"evaluations": [candidate]}, parent, 0.55, 5.0).promote
    assert not decide({"evaluations": [candidate]}, parent, 0.55, 4.99).promote
