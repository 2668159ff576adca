"""Bradley-Terry ratings from arena votes: the stronger version ranks first, intervals contain the rating."""

from __future__ import annotations

from llm_feedback_loop.arena.ratings import fit, leaderboard


def test_more_wins_give_a_higher_rating_and_ties_are_even() -> None:
    battles = [("a", "b", 1.0)] * 8 + [("a", "b", 0.0)] * 2 + [("b", "c", 1.0)] * 6 + [("b", "c", 0.0)] * 3
    standings = leaderboard(battles)
    assert [s.model_version for s in standings] == ["a", "b", "c"]
    for standing in standings:
        assert standing.ci_low <= standing.rating <= standing.ci_high
    assert standings[0].battles == 10 and standings[0].wins == 8.0
    even = fit([("x", "y", 0.5)] * 4)
    assert abs(even["x"] - even["y"]) < 1e-6


def test_an_unbeaten_version_has_a_finite_rating() -> None:
    ratings = fit([("x", "y", 1.0)] * 5)
    assert 1000 < ratings["x"] < 2000 and ratings["y"] < 1000
    assert leaderboard([]) == []
