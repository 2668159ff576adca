"""A tone and formatting rule: the answer is one plain paragraph of prose, as a voice assistant or a text
message needs: no markdown (headings, bullets, numbered lists, bold, code), no line breaks. Small chat
models trained on markdown-heavy data reach for lists and bold text even for a simple explanation.

The simulated annotator likes a complying answer only when it is also coherent (on the prompt's subject,
not degenerate). Held-out prompts are on topics the feedback never touches (`objectives/topics.py`).
"""

from __future__ import annotations

import re

from llm_feedback_loop.objectives.base import Objective
from llm_feedback_loop.objectives.topics import on_topic_check, prompts_on

TEMPLATES = ["Explain {topic} to me.", "How would you describe {topic}?"]
MARKUP = re.compile(r"\*\*|__|`|^\s*(#+\s|[-*•]\s|\d+[.)]\s)", re.MULTILINE)
coherent = on_topic_check(TEMPLATES)


def score(prompt: str, answer: str) -> float:
    """1 for non-empty text on one line with no markdown."""
    text = answer.strip()
    return float(bool(text) and "\n" not in text and MARKUP.search(text) is None)


def preferred(prompt: str, answer: str) -> float:
    return score(prompt, answer) * coherent(prompt, answer)


TASK = Objective(
    name="plain",
    description="Answers are one plain paragraph: no markdown, no line breaks.",
    train_prompts=prompts_on(TEMPLATES, held_out=False),
    eval_prompts=prompts_on(TEMPLATES, held_out=True),
    score=score,
    coherent=coherent,
    preference=preferred,
)
