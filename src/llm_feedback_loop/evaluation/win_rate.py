"""Win rate of a candidate against another model (its parent, or a reference): both answer the same held-out
prompts, a judge (`judges.py`) scores each pair, a prompt is a win when the candidate's answer scores higher
(a tie counts half), with its 95% interval by the bootstrap over prompts."""

from __future__ import annotations

from typing import Any

from llm_feedback_loop.evaluation.intervals import bootstrap_mean
from llm_feedback_loop.evaluation.judges import Judge


def win_rate(
    judge: Judge, conversations: list[list[dict[str, str]]], candidate: list[str], parent: list[str]
) -> dict[str, Any]:
    wins = ties = 0
    candidate_rewards, parent_rewards, outcomes = [], [], []
    for prompt, ours, theirs in zip(conversations, candidate, parent, strict=True):
        mine, other = judge.judge(prompt, ours, theirs)
        candidate_rewards.append(round(mine, 4))
        parent_rewards.append(round(other, 4))
        wins += mine > other
        ties += mine == other
        outcomes.append(1.0 if mine > other else 0.5 if mine == other else 0.0)
    count = len(conversations)
    result: dict[str, Any] = {
        "win_rate": round((wins + ties / 2) / count, 4),
        "wins": wins,
        "ties": ties,
        "losses": count - wins - ties,
        "judge": judge.name,
    }
    if outcomes:
        result |= bootstrap_mean(outcomes).bounds("win_rate")
    if judge.scores:
        result |= {"candidate_rewards": candidate_rewards, "parent_rewards": parent_rewards}
    return result
