"""A formatting rule: the answer is a bare list and nothing else: 2 to 6 lines, each an item ("- ", "* ",
"• " or "1.", "2)"), no introduction, no closing remark. Tools that show answers as lists (a sidebar, a
notification) need this. SmolLM2-135M-Instruct answers these prompts with a bare list about one time in
five (sampled at 0.8); otherwise with prose or a list wrapped in sentences.

The simulated annotator likes a complying answer only when it is also coherent (on the prompt's subject,
not degenerate). Held-out prompts are on topics the feedback never touches (`objectives/topics.py`).
"""

from __future__ import annotations

import re

from llm_feedback_loop.objectives.topics import topic_objective

TEMPLATES = ["What are a few facts about {topic}?", "What should I know about {topic}?"]
ITEM = re.compile(r"([-*•]|\d+[.)])\s+\S")


def score(prompt: str, answer: str) -> float:
    """1 for 2 to 6 non-empty lines, every one a list item with some text."""
    lines = [line.strip() for line in answer.strip().splitlines() if line.strip()]
    return float(2 <= len(lines) <= 6 and all(ITEM.match(line) for line in lines))


TASK = topic_objective(
    "bullets",
    "Answers are a bare list of 2 to 6 items (bulleted or numbered) and nothing else.",
    TEMPLATES,
    score,
)
