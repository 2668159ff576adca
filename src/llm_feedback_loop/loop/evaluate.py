"""A version on a task's held-out prompts: greedy answers, the task score, coherence and the task's other
measures, and the win rate of a candidate against its base judged by the task's score."""

from __future__ import annotations

import warnings
from typing import Any

from llm_feedback_loop.objectives.base import LoopTask, Scorer


def answer_prompts(source: str, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy answers of the model at `source` (a folder, hub id or LoRA adapter folder)."""
    from llm_feedback_loop.evaluation.answers import generate_answers
    from llm_feedback_loop.models.loader import load_model

    with warnings.catch_warnings():  # PEFT asks transformers a deprecated question when it loads an adapter
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        loaded = load_model(source, device="cpu")
    conversations = [[{"role": "user", "content": prompt}] for prompt in prompts]
    return generate_answers(loaded.model, loaded.tokenizer, conversations, max_new_tokens)


def task_metrics(task: LoopTask, prompts: list[str], answers: list[str]) -> dict[str, float]:
    """Means over the answers, each on 0–1 (mean_words in words)."""
    count = len(answers)
    metrics = {"task_score": sum(task.score(p, a) for p, a in zip(prompts, answers, strict=True)) / count}
    if task.coherent is not None:
        metrics["coherence"] = sum(task.coherent(p, a) for p, a in zip(prompts, answers, strict=True)) / count
    for name, measure in task.measures.items():
        metrics[name] = sum(measure(p, a) for p, a in zip(prompts, answers, strict=True)) / count
    metrics["mean_words"] = sum(len(a.split()) for a in answers) / count
    return {name: round(value, 4) for name, value in metrics.items()}


def pairwise_win_rate(score: Scorer, prompts: list[str], candidate: list[str], base: list[str]) -> dict[str, Any]:
    """A prompt is a win when the candidate's answer scores higher than the base's; a tie counts half."""
    from llm_feedback_loop.evaluation.judges import FunctionJudge
    from llm_feedback_loop.evaluation.win_rate import win_rate

    conversations = [[{"role": "user", "content": prompt}] for prompt in prompts]
    result = win_rate(FunctionJudge("task score", score), conversations, candidate, base)
    return {key: result[key] for key in ("win_rate", "wins", "ties", "losses")}
