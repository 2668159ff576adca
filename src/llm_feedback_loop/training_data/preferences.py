"""Preference pairs (chosen ≻ rejected) from comparisons, corrections and opposite thumbs.

Every source casts votes for ordered pairs of answers to one prompt; `aggregate_preference_votes`
then keeps the majority direction of each pair of answers and drops ties, so the dataset never holds
both A ≻ B and B ≻ A.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

from llm_feedback_loop.feedback.records import ComparisonRecord, CorrectionRecord, PromptGroup, RatingRecord

if TYPE_CHECKING:  # options.py reads the kinds table, whose row builders use this module
    from llm_feedback_loop.training_data.options import PairStrategy

_UNUSED_RNG = random.Random(0)  # strategies without a random draw never touch it


@dataclass(slots=True)
class PreferenceVote:
    chosen: str
    rejected: str
    source: str  # "comparison" | "correction" | "rating"


@dataclass(frozen=True, slots=True)
class PreferencePair:
    chosen: str
    rejected: str
    source: str
    votes: int
    against: int


def best_first_order(comparison: ComparisonRecord) -> list[int] | None:
    """Indices best first, as far as they are known: the full ranking, or just the best pick."""
    if comparison.ranking is not None:
        return list(comparison.ranking)
    if comparison.best_index is not None:
        return [comparison.best_index]
    return None


def preference_pairs_from_ranking(
    texts: list[str],
    ranking: list[int] | None,
    best_index: int | None,
    strategy: PairStrategy,
    rng: random.Random,
    max_pairs: int | None = None,
) -> list[tuple[str, str]]:
    """Ordered (chosen, rejected) pairs of one comparison under a pairing strategy; the first `max_pairs` of
    them when given (best vs the rest first, then second vs those below it, ...), made lazily: a ranking of
    400 answers costs `max_pairs` pairs, not 79,800.

    `ranking` lists indices into `texts`, best first. With only `best_index`, the best answer is known
    to beat each other one and nothing is known among the others, whatever the strategy. `best-vs-worst`
    gives every pair, the widest apart first (best ≻ worst, then best ≻ second worst and second best ≻ worst,
    ...): under a cap of k pairs a prompt gives its k clearest ones.
    """
    index_pairs = _index_pairs(texts, ranking, best_index, strategy, rng)
    pairs = ((texts[a], texts[b]) for a, b in index_pairs if texts[a] != texts[b])
    return list(pairs if max_pairs is None else islice(pairs, max_pairs))


def _index_pairs(
    texts: list[str], ranking: list[int] | None, best_index: int | None, strategy: PairStrategy, rng: random.Random
) -> Iterator[tuple[int, int]]:
    if ranking is not None:
        order = list(ranking)
        if strategy == "all-pairs":
            yield from ((order[i], order[j]) for i in range(len(order)) for j in range(i + 1, len(order)))
        elif strategy == "best-vs-worst":  # every pair, the widest apart in the ranking first
            for gap in range(len(order) - 1, 0, -1):
                yield from ((order[i], order[i + gap]) for i in range(len(order) - gap))
        elif strategy == "best-vs-rest":
            yield from ((order[0], other) for other in order[1:])
        elif len(order) > 1:
            yield order[0], rng.choice(order[1:])
    elif best_index is not None:
        others = [i for i in range(len(texts)) if i != best_index]
        if strategy == "best-vs-random-lower":
            others = [rng.choice(others)] if others else []
        yield from ((best_index, other) for other in others)


def net_votes_by_response(ratings: list[RatingRecord]) -> dict[str, int]:
    """Up votes minus down votes for each distinct answer text, in order of first appearance."""
    net: dict[str, int] = {}
    for rating in ratings:
        net[rating.response] = net.get(rating.response, 0) + (1 if rating.rating == "up" else -1)
    return net


def votes_from_ratings(ratings: list[RatingRecord], max_votes: int | None = None) -> list[PreferenceVote]:
    """Each answer voted up overall beats each answer voted down overall (same prompt); the first
    `max_votes` of those when given."""
    net = net_votes_by_response(ratings)
    liked = [text for text, score in net.items() if score > 0]
    disliked = [text for text, score in net.items() if score < 0]
    votes = (PreferenceVote(good, bad, "rating") for good in liked for bad in disliked)
    return list(votes if max_votes is None else islice(votes, max_votes))


def votes_from_corrections(corrections: list[CorrectionRecord]) -> list[PreferenceVote]:
    return [PreferenceVote(c.corrected, c.original, "correction") for c in corrections if c.corrected != c.original]


def votes_from_comparisons(
    comparisons: list[ComparisonRecord], strategy: PairStrategy, seed: int, max_pairs: int | None = None
) -> tuple[list[PreferenceVote], bool]:
    """Each comparison's pairs as votes, at most `max_pairs` from each. Returns (votes, whether a comparison
    had more pairs than that)."""
    votes = []
    capped = False
    for comparison in comparisons:
        # Seeded per comparison: the same data and seed always give the same random pick.
        rng = random.Random(f"{seed}:{comparison.id}") if strategy == "best-vs-random-lower" else _UNUSED_RNG
        take = None if max_pairs is None else max_pairs + 1  # one more tells whether there were more
        pairs = preference_pairs_from_ranking(
            comparison.responses, comparison.ranking, comparison.best_index, strategy, rng, take
        )
        if max_pairs is not None and len(pairs) > max_pairs:
            pairs, capped = pairs[:max_pairs], True
        votes.extend(PreferenceVote(chosen, rejected, "comparison") for chosen, rejected in pairs)
    return votes, capped


def aggregate_preference_votes(votes: list[PreferenceVote]) -> tuple[list[PreferencePair], int]:
    """Majority direction for each pair of answers; ties dropped. Returns (pairs, number of ties)."""
    tally: dict[tuple[str, str], int] = {}
    first_source: dict[tuple[str, str], str] = {}
    unordered_pairs: dict[tuple[str, str], None] = {}  # in order of first vote
    for vote in votes:
        key = (vote.chosen, vote.rejected)
        if key in tally:
            tally[key] += 1
        else:
            tally[key] = 1
            first_source[key] = vote.source
        unordered_pairs[(key[0], key[1]) if key[0] < key[1] else (key[1], key[0])] = None
    pairs: list[PreferencePair] = []
    ties = 0
    for a, b in unordered_pairs:
        forward, backward = tally.get((a, b), 0), tally.get((b, a), 0)
        if forward == backward:
            ties += 1
            continue
        chosen, rejected = (a, b) if forward > backward else (b, a)
        pairs.append(
            PreferencePair(
                chosen,
                rejected,
                first_source[(chosen, rejected)],
                votes=max(forward, backward),
                against=min(forward, backward),
            )
        )
    return pairs, ties


def cap_pairs(pairs: list[PreferencePair], max_pairs: int) -> list[PreferencePair]:
    """The `max_pairs` best-supported pairs (largest majority first; ties in order of first vote)."""
    if len(pairs) <= max_pairs:
        return pairs
    return sorted(pairs, key=lambda pair: pair.against - pair.votes)[:max_pairs]


def preference_pairs_for_group(
    group: PromptGroup, strategy: PairStrategy, seed: int, max_pairs: int | None = None
) -> tuple[list[PreferencePair], int, bool]:
    """The preference pairs one prompt's feedback supports, aggregated; at most `max_pairs` of them (each
    comparison and the ratings give at most that many votes, and the best-supported pairs are kept).
    Returns (pairs, ties dropped, whether the cap left pairs out)."""
    comparison_votes, capped = votes_from_comparisons(group.comparisons, strategy, seed, max_pairs)
    # Every liked answer × every disliked one: bounded too.
    rating_votes = votes_from_ratings(group.ratings, None if max_pairs is None else max_pairs + 1)
    if max_pairs is not None and len(rating_votes) > max_pairs:
        rating_votes, capped = rating_votes[:max_pairs], True
    votes = comparison_votes + votes_from_corrections(group.corrections) + rating_votes
    pairs, ties = aggregate_preference_votes(votes)
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs, capped = cap_pairs(pairs, max_pairs), True
    return pairs, ties, capped
