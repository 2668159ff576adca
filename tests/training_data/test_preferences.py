"""Preference pairs: strategies, votes from every source, and aggregation across annotators."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_feedback_loop.feedback.records import ComparisonRecord, CorrectionRecord, PromptGroup, RatingRecord
from llm_feedback_loop.training_data.preferences import (
    PreferenceVote,
    aggregate_preference_votes,
    preference_pairs_for_group,
    preference_pairs_from_ranking,
    votes_from_ratings,
)

TEXTS = ["A", "B", "C", "D"]


def pairs(strategy: str, ranking=None, best=None, seed: int = 0) -> list[tuple[str, str]]:
    return preference_pairs_from_ranking(TEXTS, ranking, best, strategy, random.Random(seed))  # type: ignore[arg-type]


def test_all_pairs_is_every_ordered_pair_of_the_ranking() -> None:
    assert pairs("all-pairs", ranking=[2, 0, 3, 1]) == [
        ("C", "A"),
        ("C", "D"),
        ("C", "B"),
        ("A", "D"),
        ("A", "B"),
        ("D", "B"),
    ]


def test_best_vs_rest_pairs_the_best_with_each_other() -> None:
    assert pairs("best-vs-rest", ranking=[2, 0, 3, 1]) == [("C", "A"), ("C", "D"), ("C", "B")]


def test_best_vs_random_lower_is_one_seeded_pair_with_the_best() -> None:
    chosen = {pairs("best-vs-random-lower", ranking=[2, 0, 3, 1], seed=s)[0] for s in range(30)}
    assert {c for c, _ in chosen} == {"C"}
    assert {r for _, r in chosen} == {"A", "D", "B"}
    assert pairs("best-vs-random-lower", ranking=[2, 0, 3, 1], seed=4) == pairs(
        "best-vs-random-lower", ranking=[2, 0, 3, 1], seed=4
    )


def test_best_vs_worst_gives_every_pair_widest_apart_first() -> None:
    assert pairs("best-vs-worst", ranking=[2, 0, 3, 1]) == [
        ("C", "B"),
        ("C", "D"),
        ("A", "B"),
        ("C", "A"),
        ("A", "D"),
        ("D", "B"),
    ]


def test_best_vs_worst_under_a_cap_keeps_the_clearest_pairs() -> None:
    capped = preference_pairs_from_ranking(TEXTS, [2, 0, 3, 1], None, "best-vs-worst", random.Random(0), 2)
    assert capped == [("C", "B"), ("C", "D")]


def test_a_large_ranking_capped_costs_only_its_cap() -> None:
    texts = [f"answer {i}" for i in range(400)]
    capped = preference_pairs_from_ranking(texts, list(range(400)), None, "best-vs-worst", random.Random(0), 3)
    assert capped == [("answer 0", "answer 399"), ("answer 0", "answer 398"), ("answer 1", "answer 399")]


@pytest.mark.parametrize("strategy", ["all-pairs", "best-vs-rest", "best-vs-worst"])
def test_best_pick_only_gives_best_vs_each_other(strategy: str) -> None:
    assert pairs(strategy, best=1) == [("B", "A"), ("B", "C"), ("B", "D")]


def test_no_ranking_and_no_best_pick_gives_nothing() -> None:
    assert pairs("all-pairs") == []


def test_identical_answers_make_no_pair() -> None:
    assert preference_pairs_from_ranking(["same", "same"], [0, 1], None, "all-pairs", random.Random(0)) == []


def test_opposite_votes_keep_the_majority_and_drop_ties() -> None:
    votes = [PreferenceVote("A", "B", "comparison")] * 2 + [PreferenceVote("B", "A", "comparison")]
    votes += [PreferenceVote("C", "D", "comparison"), PreferenceVote("D", "C", "rating")]
    aggregated, ties = aggregate_preference_votes(votes)
    assert [(p.chosen, p.rejected, p.votes, p.against) for p in aggregated] == [("A", "B", 2, 1)]
    assert ties == 1


def test_ratings_pair_liked_against_disliked_answers_by_net_vote() -> None:
    ratings = [
        RatingRecord(1, "good", "up"),
        RatingRecord(2, "bad", "down"),
        RatingRecord(3, "mixed", "up"),
        RatingRecord(4, "mixed", "down"),
        RatingRecord(5, "bad", "up"),
        RatingRecord(6, "bad", "down"),
    ]
    assert [(v.chosen, v.rejected) for v in votes_from_ratings(ratings)] == [("good", "bad")]


def test_group_pairs_come_from_comparisons_corrections_and_ratings() -> None:
    group = PromptGroup(
        "h",
        "p",
        [{"role": "user", "content": "p"}],
        ratings=[RatingRecord(1, "up-answer", "up"), RatingRecord(2, "down-answer", "down")],
        comparisons=[ComparisonRecord(3, ["x", "y"], [1, 0], 1)],
        corrections=[CorrectionRecord(4, "wrong", "right")],
    )
    found, ties, capped = preference_pairs_for_group(group, "all-pairs", seed=0)
    assert not capped
    assert {(p.chosen, p.rejected, p.source) for p in found} == {
        ("y", "x", "comparison"),
        ("right", "wrong", "correction"),
        ("up-answer", "down-answer", "rating"),
    }
    assert ties == 0


def test_a_correction_can_outvote_a_comparison() -> None:
    group = PromptGroup(
        "h",
        "p",
        [{"role": "user", "content": "p"}],
        comparisons=[ComparisonRecord(1, ["old", "new"], [0, 1], 0)],
        corrections=[CorrectionRecord(2, "old", "new"), CorrectionRecord(3, "old", "new")],
    )
    found, _, _ = preference_pairs_for_group(group, "all-pairs", seed=0)
    assert [(p.chosen, p.rejected) for p in found] == [("new", "old")]


answers = st.sampled_from(["a", "b", "c", "d", "e"])


@given(st.lists(st.tuples(answers, answers), max_size=40))
def test_aggregation_never_emits_both_directions_or_self_pairs(raw: list[tuple[str, str]]) -> None:
    votes = [PreferenceVote(c, r, "comparison") for c, r in raw if c != r]
    aggregated, _ = aggregate_preference_votes(votes)
    seen = {(p.chosen, p.rejected) for p in aggregated}
    assert len(seen) == len(aggregated)
    for chosen, rejected in seen:
        assert chosen != rejected
        assert (rejected, chosen) not in seen


def test_pairs_of_a_large_ranking_are_capped_best_first() -> None:
    texts = [f"answer {i}" for i in range(400)]
    group = PromptGroup(
        "h", "p", [{"role": "user", "content": "p"}], comparisons=[ComparisonRecord(1, texts, list(range(400)), 0)]
    )
    found, ties, capped = preference_pairs_for_group(group, "all-pairs", seed=0, max_pairs=64)
    assert capped and ties == 0 and len(found) == 64  # not 79,800
    assert {pair.chosen for pair in found} == {"answer 0"}  # the best answer's pairs first
    uncapped, _, capped = preference_pairs_for_group(group, "all-pairs", seed=0, max_pairs=100_000)
    assert not capped and len(uncapped) == 400 * 399 // 2


def test_ratings_cross_product_is_capped() -> None:
    ratings = [RatingRecord(i, f"good {i}", "up") for i in range(50)]
    ratings += [RatingRecord(100 + i, f"bad {i}", "down") for i in range(50)]
    group = PromptGroup("h", "p", [{"role": "user", "content": "p"}], ratings=ratings)
    found, _, capped = preference_pairs_for_group(group, "all-pairs", seed=0, max_pairs=10)
    assert capped and len(found) == 10
