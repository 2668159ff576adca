"""A content rule: the answer ends with one follow-up question to the user ("... Would you like to know how
they make honey?"), after at least one sentence that answers. Chat assistants are often asked for this; a
small model rarely does it unprompted.

An answer complies when its text ends with a question mark, holds exactly one question, and has a
statement before it. The simulated annotator likes a complying answer only when it is also coherent (on the
prompt's subject, not degenerate). Held-out prompts are on topics the feedback never touches
(`objectives/topics.py`).
"""

from __future__ import annotations

import re

from llm_feedback_loop.objectives.base import Objective
from llm_feedback_loop.objectives.topics import on_topic_check, prompts_on

TEMPLATES = ["Tell me about {topic}.", "What is interesting about {topic}?"]
coherent = on_topic_check(TEMPLATES)


def score(prompt: str, answer: str) -> float:
    """1 when the answer ends with its only question, after at least one statement."""
    text = answer.strip()
    if not text.endswith("?") or text.count("?") != 1:
        return 0.0
    before = text[: text.rfind("?")]
    statement = re.split(r"(?<=[.!])\s+", before.strip())[:-1]  # the sentences before the question's own
    return float(any(part.strip() for part in statement))


def preferred(prompt: str, answer: str) -> float:
    return score(prompt, answer) * coherent(prompt, answer)


TASK = Objective(
    name="follow_up",
    description="Answers end with one follow-up question to the user, after answering.",
    train_prompts=prompts_on(TEMPLATES, held_out=False),
    eval_prompts=prompts_on(TEMPLATES, held_out=True),
    score=score,
    coherent=coherent,
    preference=preferred,
)
