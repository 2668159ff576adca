"""How a round spends its sampling budget: the plan on fixed scores."""

from __future__ import annotations

from pathlib import Path

from llm_feedback_loop.loop.budget import (
    first_pass_prompts,
    following,
    informative,
    shortfall_budget,
    signal,
    top_ups,
)
from llm_feedback_loop.loop.context import LoopSettings
from llm_feedback_loop.objectives.concise import TASK


def test_the_first_pass_spends_two_thirds_of_the_budget_on_two_answers_a_prompt() -> None:
    assert first_pass_prompts(64 * 4, 4) == 85  # 170 of 256 answers
    assert first_pass_prompts(64 * 3, 3) == 64
    assert first_pass_prompts(64 * 2, 2) == 64  # two answers a prompt anyway: the whole budget
    assert first_pass_prompts(1, 4) == 1


def test_answers_judged_alike_teach_nothing() -> None:
    assert not informative([0.0, 0.0]) and not informative([1.0]) and not informative([])
    assert informative([1.0, 0.0]) and informative([0.2, 0.5, 0.5])
    assert signal([[1.0, 0.0], [0.0, 0.0], [0.3, 0.4], [1.0, 1.0]]) == 2


def test_scores_that_differ_but_give_no_pair_teach_nothing() -> None:
    """Three thumbs up with no strict order (0.6, 0.6, 0.7) give the export no pair: not signal. Two of them
    in a strict order, or an up beside a down, do."""
    assert not informative([0.6, 0.6, 0.7]) and not informative([0.1, 0.1, 0.2])
    assert informative([0.6, 0.7]) and informative([0.4, 0.6, 0.6])
    assert signal([[0.6, 0.6, 0.7], [0.6, 0.7], [0.9, 0.9]]) == 1


def test_more_answers_go_to_the_prompts_judged_alike_while_the_budget_lasts() -> None:
    judged = [[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.5, 0.1], [0.0, 0.0]]
    assert top_ups(judged, left=100, answers=4) == [1, 2, 3, 5]
    assert top_ups(judged, left=5, answers=4) == [1, 2]  # 2 more each: the budget pays for two
    assert top_ups(judged, left=100, answers=2) == []  # they have all their answers already
    assert top_ups([[0.0, 0.0, 0.0], [0.0, 0.0]], left=3, answers=4) == [0, 1]  # 1 + 2 answers
    assert top_ups([[0.0], []], left=10, answers=4, have=[2, 2]) == [0, 1]  # empty answers: not judged, but had


def test_new_prompts_follow_the_last_used_one_and_wrap_around() -> None:
    pool = ["a", "b", "c", "d", "e"]
    assert following(pool, ["b", "c"], 2) == ["d", "e"]
    assert following(pool, ["d", "e"], 4) == ["a", "b", "c"]  # no prompt twice
    assert following(pool, [], 2) == ["a", "b"]
    assert following(pool, list(pool), 3) == []


def test_a_round_collects_once_more_below_half_its_prompts_and_trains_from_a_quarter() -> None:
    def settings(**options: int) -> LoopSettings:
        return LoopSettings(name="t", objective=TASK, folder=Path("unused"), **options)

    assert (settings().signal_needed, settings().signal_wanted) == (16, 32)
    assert (settings(prompts_per_round=8).signal_needed, settings(prompts_per_round=8).signal_wanted) == (2, 4)
    assert settings(prompts_per_round=200).signal_wanted == 32
    assert settings(min_signal=50).signal_wanted == 50  # a --min-signal above it: collect more up to that
    assert settings(min_signal=3).signal_wanted == 32


def test_a_second_collection_is_sized_to_the_signal_the_first_one_lacked() -> None:
    assert shortfall_budget(256, asked=256, found=30, wanted=32) == 26  # 2 prompts at 8.5 answers each, × 1.5
    assert shortfall_budget(256, asked=256, found=31, wanted=32) == 13
    assert shortfall_budget(256, asked=256, found=16, wanted=32) == 256  # 384 would be more than a budget
    assert shortfall_budget(256, asked=256, found=0, wanted=32) == 256  # no rate to go by: a whole budget
    assert shortfall_budget(256, asked=256, found=32, wanted=32) == 0
    assert shortfall_budget(8, asked=8, found=3, wanted=50) == 8  # --min-signal far above what a round finds
