"""A formatting rule: the answer is a bulleted list and nothing else: 2 to 6 lines, each starting with "- "
(or "* ", "• "), no introduction, no closing remark, no numbering. Tools that show answers as lists (a
sidebar, a notification) need this; a small model usually adds an introduction or numbers its points.

The simulated annotator likes a complying answer only when it is also coherent (on the prompt's subject,
not degenerate). Held-out prompts are on topics the feedback never touches (`objectives/topics.py`).
"""

from __future__ import annotations

from llm_feedback_loop.objectives.base import Objective
from llm_feedback_loop.objectives.topics import on_topic_check, prompts_on

TEMPLATES = ["Give me a few facts about {topic}.", "What should I know about {topic}?"]
BULLETS = ("- ", "* ", "• ")
coherent = on_topic_check(TEMPLATES)


def score(prompt: str, answer: str) -> float:
    """1 for 2 to 6 non-empty lines, every one a bullet with some text."""
    lines = [line.strip() for line in answer.strip().splitlines() if line.strip()]
    return float(2 <= len(lines) <= 6 and all(line.startswith(BULLETS) and line[2:].strip() for line in lines))


def preferred(prompt: str, answer: str) -> float:
    return score(prompt, answer) * coherent(prompt, answer)


TASK = Objective(
    name="bullets",
    description='Answers are a bulleted list of 2 to 6 "- " lines and nothing else.',
    train_prompts=prompts_on(TEMPLATES, held_out=False),
    eval_prompts=prompts_on(TEMPLATES, held_out=True),
    score=score,
    coherent=coherent,
    preference=preferred,
)
