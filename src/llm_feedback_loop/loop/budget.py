"""How a round spends its sampling budget where the answers teach something.

A round may sample `prompts_per_round × answers` answers. A prompt teaches DPO only when its answers are
judged differently (a liked one and a disliked one, or a ranking), and a few prompts that each give many
near-duplicate pairs teach less than many prompts giving one or two. So a round judged as it goes (the
simulated annotator) samples in passes:

1. two answers to each of as many distinct prompts as two-thirds of the budget allows;
2. more answers (up to `answers` in all) to the prompts whose two answers were judged alike: a prompt with
   a pair already has its lesson, one without may still give one;
3. what is left of the budget: two answers to each of further new prompts.

A round whose answers were judged differently on fewer than `signal_wanted` prompts (half the round's, at
most 32) collects once more on new prompts (`MORE_BUDGETS`), with a budget sized to what it lacks
(`shortfall_budget`: the answers its first budget spent per prompt of signal, for the prompts still wanted,
and half as many again; a whole budget at most), and when its feedback still
covers fewer than `signal_needed` (`min_signal`: a quarter, at most 16), trains nothing: its feedback is kept
and the next round trains on it with its own. People judge a round in one pass (`answers` answers to
`prompts_per_round` prompts): they cannot be asked for a second look in between.

The functions here are pure: the plan is tested on fixed scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

UP_THRESHOLD = 0.5  # the simulated annotator gives a thumbs up to answers scoring at least this
FIRST_ANSWERS = 2  # answers to every prompt in the first pass
MORE_BUDGETS = 1  # budgets spent again when a round's first one found too little signal
SHORTFALL_MARGIN = 1.5  # a further budget pays for this many times the answers the missing signal should cost


def first_pass_prompts(budget: int, answers: int) -> int:
    """Distinct prompts the first pass answers FIRST_ANSWERS times each (all of the budget when a prompt
    gets no more than that anyway)."""
    if answers <= FIRST_ANSWERS:
        return max(1, budget // answers)
    return max(1, (2 * budget) // (3 * FIRST_ANSWERS))


def first_answers(answers: int) -> int:
    return min(answers, FIRST_ANSWERS)


def judgement(scores: Sequence[float]) -> tuple[list[int] | None, list[str]]:
    """What the simulated annotator says of answers with these scores: a thumbs up or down on each, and a
    ranking (best first) only when the scores put the answers in a strict order."""
    ratings = ["up" if score >= UP_THRESHOLD else "down" for score in scores]
    ranking = None
    if len(set(scores)) == len(scores) > 1:
        ranking = sorted(range(len(scores)), key=lambda index: -scores[index])
    return ranking, ratings


def informative(scores: Sequence[float]) -> bool:
    """Whether answers judged with these scores teach a preference: their judgement gives a pair (a strict
    ranking, or a thumbs up and a thumbs down). Scores that differ without either (0.6, 0.6, 0.7: three
    thumbs up, no strict order) give none."""
    ranking, ratings = judgement(scores)
    return ranking is not None or len(set(ratings)) > 1


def top_ups(judged: Sequence[Sequence[float]], left: int, answers: int, have: Sequence[int] | None = None) -> list[int]:
    """The prompts (indices into `judged`, in order) that get more answers, up to `answers` each: those whose
    answers were all judged alike, as many as `left` answers pay for. `have`: each prompt's answers so far
    (default: as many as were judged; an empty answer is not judged)."""
    chosen = []
    for index, scores in enumerate(judged):
        more = answers - (have[index] if have is not None else len(scores))
        if more <= 0 or informative(scores):
            continue
        if more > left:
            break
        chosen.append(index)
        left -= more
    return chosen


def following(pool: Sequence[str], used: Sequence[str], count: int) -> list[str]:
    """Up to `count` prompts of `pool` not in `used`, in the pool's order from the one after the last used
    (wrapping around)."""
    taken = set(used)
    start = (pool.index(used[-1]) + 1) if used and used[-1] in pool else 0
    rotated = list(pool[start:]) + list(pool[:start])
    return [prompt for prompt in rotated if prompt not in taken][:count]


def signal(judged: Sequence[Sequence[float]]) -> int:
    """How many prompts' answers were judged differently."""
    return sum(informative(scores) for scores in judged)


def shortfall_budget(budget: int, asked: int, found: int, wanted: int) -> int:
    """Answers a further collection may sample when `asked` answers found `found` prompts judged differently,
    fewer than `wanted`: at the rate the answers so far found them, what the missing prompts should cost,
    times SHORTFALL_MARGIN (rounded up), and at most a whole `budget`. A collection that found nothing has no
    rate to go by and gets the whole budget. (`bullets`, 64 prompts × 4 answers: 256 answers found 30 of 32
    prompts, so the second collection gets 26 answers, not 256.)"""
    missing = wanted - found
    if missing <= 0:
        return 0
    if found <= 0:
        return budget
    return min(budget, math.ceil(SHORTFALL_MARGIN * missing * asked / found))
