"""A content rule: the answer gives at least one concrete figure (a number: a date, a count, a size, a
share), as people asking about a subject often want something specific rather than adjectives.
SmolLM2-135M-Instruct does so in about one answer in six to these prompts (sampled at 0.8), so a round's
answers often differ and the annotator's judgements carry a signal.

An answer complies when it contains a number in digits or in words ("1889", "three", "a million"). The
simulated annotator likes a complying answer only when it is also coherent (on the prompt's subject, not
degenerate). Held-out prompts are on topics the feedback never touches (`objectives/topics.py`).

(A rule SmolLM2 never follows gives the loop nothing to learn from: a first version of this task, "end with
one follow-up question", got 0 of 256 sampled answers right, even when the prompt asked for the question.)
"""

from __future__ import annotations

import re

from llm_feedback_loop.objectives.topics import topic_objective

TEMPLATES = ["Tell me about {topic}.", "What is interesting about {topic}?"]
NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"hundreds|thousand|thousands|million|millions|billion|billions|dozen|dozens)\b",
    re.IGNORECASE,
)


def score(prompt: str, answer: str) -> float:
    """1 when the answer holds a number, in digits or in words."""
    return float(NUMBER.search(answer) is not None)


TASK = topic_objective(
    "specific",
    "Answers give at least one concrete figure (a number: a date, a count, a size).",
    TEMPLATES,
    score,
)
