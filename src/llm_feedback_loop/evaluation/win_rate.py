"""Win rate of a candidate against its parent, judged by a reward model: both answer the same held-out
prompts; a prompt is a win when the judge scores the candidate's answer higher (a tie counts half)."""

from __future__ import annotations

from typing import Any

from llm_feedback_loop.evaluation.preference import reward_score


def win_rate(
    judge: Any, tokenizer: Any, conversations: list[list[dict[str, str]]], candidate: list[str], parent: list[str]
) -> dict[str, Any]:
    wins = ties = 0
    candidate_rewards, parent_rewards = [], []
    for prompt, ours, theirs in zip(conversations, candidate, parent, strict=True):
        mine = reward_score(judge, tokenizer, prompt, [{"role": "assistant", "content": ours}])
        other = reward_score(judge, tokenizer, prompt, [{"role": "assistant", "content": theirs}])
        candidate_rewards.append(round(mine, 4))
        parent_rewards.append(round(other, 4))
        wins += mine > other
        ties += mine == other
    count = len(conversations)
    return {
        "win_rate": round((wins + ties / 2) / count, 4),
        "wins": wins,
        "ties": ties,
        "losses": count - wins - ties,
        "candidate_rewards": candidate_rewards,
        "parent_rewards": parent_rewards,
    }
