"""Held-out answers on the tiny model: sampled answers are reproducible by their seed, and a greedy answer
is the same whether or not samples are drawn beside it."""

from __future__ import annotations

from pathlib import Path

import torch

from llm_feedback_loop.evaluation.answers import answer_and_sample, answer_prompts

PROMPTS = ["What is 2+2?", "What is 3+5?", "What is 7+1?"]


def test_sampled_answers_are_reproducible_and_leave_the_greedy_ones_alone(tiny_model: Path) -> None:
    source = str(tiny_model)
    greedy, sampled = answer_and_sample(source, PROMPTS, 8, 3, seed=1)
    assert greedy == answer_prompts(source, PROMPTS, 8)
    assert [len(answers) for answers in sampled] == [3, 3, 3]
    torch.manual_seed(123)
    state = torch.get_rng_state()
    again = answer_and_sample(source, PROMPTS, 8, 3, greedy=False, seed=1)
    assert again == ([], sampled)  # the same seed: the same samples
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is untouched
    other = answer_and_sample(source, PROMPTS, 8, 3, greedy=False, seed=2)[1]
    assert other != sampled
    assert answer_and_sample(source, PROMPTS, 8, 0) == (greedy, [[], [], []])
