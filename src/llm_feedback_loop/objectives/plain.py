"""A tone and formatting rule: the answer is one plain paragraph of prose, as a voice assistant or a text
message needs: no markdown (headings, bullets, numbered lists, bold, code), no line breaks. Small chat
models trained on markdown-heavy data reach for lists and bold text when asked for facts: SmolLM2-135M-Instruct
answers these prompts in one plain paragraph about one time in three (greedy, held-out topics).

The simulated annotator likes a complying answer only when it is also coherent (on the prompt's subject,
not degenerate). Held-out prompts are on topics the feedback never touches (`objectives/topics.py`).
"""

from __future__ import annotations

import re

from llm_feedback_loop.objectives.topics import topic_objective

TEMPLATES = ["What are the main things to know about {topic}?", "Tell me the key facts about {topic}."]
MARKUP = re.compile(r"\*\*|__|`|^\s*(#+\s|[-*•]\s|\d+[.)]\s)", re.MULTILINE)


def score(prompt: str, answer: str) -> float:
    """1 for non-empty text on one line with no markdown."""
    text = answer.strip()
    return float(bool(text) and "\n" not in text and MARKUP.search(text) is None)


TASK = topic_objective(
    "plain",
    "Answers are one plain paragraph: no markdown, no line breaks.",
    TEMPLATES,
    score,
)
