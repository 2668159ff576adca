"""The built-in style tasks: each loads by name, holds out whole topics, and scores answers as its rule says."""

from __future__ import annotations

import pytest

from llm_feedback_loop.objectives.base import load_objective
from llm_feedback_loop.objectives.topics import TOPICS, held_out_topic

STYLES = ["specific", "bullets", "plain"]


@pytest.mark.parametrize("name", STYLES)
def test_a_style_task_holds_out_topics_the_feedback_never_touches(name: str) -> None:
    task = load_objective(name)
    assert task.name == name and len(task.eval_prompts) >= 60 and len(task.train_prompts) >= 100
    held_out = [topic for topic, _ in TOPICS if held_out_topic(topic)]
    assert held_out and all(any(topic in prompt for topic in held_out) for prompt in task.eval_prompts)
    assert not any(topic in prompt for topic in held_out for prompt in task.train_prompts)


@pytest.mark.parametrize(
    ("name", "answer", "complies"),
    [
        ("specific", "A hive holds up to 60,000 bees.", True),
        ("specific", "A hive holds about fifty thousand bees.", True),
        ("specific", "A hive holds a great many bees.", False),
        ("bullets", "- Bees make honey.\n- A hive has one queen.", True),
        ("bullets", "1. Bees make honey.\n2) A hive has one queen.", True),  # numbered is a list too
        ("bullets", "Here are some facts:\n- Bees make honey.\n- A hive has one queen.", False),  # an introduction
        ("bullets", "- Bees make honey.\n-", False),  # an empty item
        ("bullets", "- Bees make honey.", False),  # one line is not a list
        ("plain", "Bees make honey in hives, and a hive has one queen.", True),
        ("plain", "**Bees** make honey.", False),
        ("plain", "Bees:\n- make honey", False),
        ("plain", "Bees make honey.\nThey live in hives.", False),  # two lines
    ],
)
def test_a_style_task_scores_its_rule(name: str, answer: str, complies: bool) -> None:
    task = load_objective(name)
    prompt = next(p for p in task.train_prompts if "honeybees" in p)
    assert task.score(prompt, answer) == float(complies)
    assert task.prefers(prompt, answer) == float(complies)  # on topic: liked exactly when it complies


@pytest.mark.parametrize("name", STYLES)
def test_an_off_topic_or_degenerate_answer_is_not_coherent_and_not_liked(name: str) -> None:
    task = load_objective(name)
    prompt = next(p for p in task.train_prompts if "honeybees" in p)
    assert task.coherent is not None and task.coherent(prompt, "Bees live in hives.")
    off_topic = {"specific": "Paris has 2 million people.", "bullets": "- Paris\n- France",
                 "plain": "Paris is in France."}[name]  # fmt: skip
    assert task.score(prompt, off_topic) == 1.0 and not task.coherent(prompt, off_topic)
    assert task.prefers(prompt, off_topic) == 0.0
    assert not task.coherent(prompt, "bees bees bees bees bees bees bees bees bees")
