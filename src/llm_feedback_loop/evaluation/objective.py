"""A model on an objective's held-out prompts: the objective's score, coherence and other measures of its
answers and, beside another model's answers to the same prompts, the win rate (judged by the objective's
score unless another judge is given), each with its 95% interval by the bootstrap over prompts, and the
task score's gain over the other model (paired, per prompt) with its interval. `llmfl eval --task` and the
loop's rounds both evaluate through here.

Where sampled answers are given too (several per prompt), `sampled_task_score` and `sampled_coherence` are
their means, each prompt's answers averaged first so that the interval is still the bootstrap over prompts,
and `sampled_gain` the paired gain over the other model's sampled answers. A prompt's score is then a share
(2 of 4 samples complied), so the figures move in finer steps than greedy answers' one prompt in 42."""

from __future__ import annotations

from typing import Any

from llm_feedback_loop.evaluation.intervals import bootstrap_mean, paired_gain
from llm_feedback_loop.evaluation.judges import FunctionJudge, Judge
from llm_feedback_loop.evaluation.result import EvaluatedData, Evaluation
from llm_feedback_loop.evaluation.win_rate import win_rate
from llm_feedback_loop.objectives.base import Objective


def objective_metrics(objective: Objective, prompts: list[str], answers: list[str]) -> dict[str, float]:
    """Means over the answers, each on 0–1 (mean_words in words)."""
    count = len(answers)
    pairs = list(zip(prompts, answers, strict=True))
    metrics = {"task_score": sum(objective.score(p, a) for p, a in pairs) / count}
    if objective.coherent is not None:
        metrics["coherence"] = sum(objective.coherent(p, a) for p, a in pairs) / count
    for name, measure in objective.measures.items():
        metrics[name] = sum(measure(p, a) for p, a in pairs) / count
    metrics["mean_words"] = sum(len(a.split()) for a in answers) / count
    return {name: round(value, 4) for name, value in metrics.items()}


def per_prompt(scorer: Any, prompts: list[str], sampled: list[list[str]]) -> list[float]:
    """Each prompt's mean of `scorer` over its sampled answers."""
    pairs = zip(prompts, sampled, strict=True)
    return [sum(float(scorer(prompt, a)) for a in answers) / len(answers) for prompt, answers in pairs]


def sampled_metrics(
    objective: Objective, prompts: list[str], sampled: list[list[str]], compared: list[list[str]] | None
) -> dict[str, Any]:
    """The sampled answers' task score and coherence, with their intervals, and the gain over `compared`'s."""
    if not sampled or any(not answers for answers in sampled):
        return {}
    scores = per_prompt(objective.score, prompts, sampled)
    metrics: dict[str, Any] = {"samples_per_prompt": min(len(answers) for answers in sampled)}
    interval = bootstrap_mean(scores)
    metrics |= {"sampled_task_score": round(interval.mean, 4)} | interval.bounds("sampled_task_score")
    if objective.coherent is not None:
        coherence = bootstrap_mean(per_prompt(objective.coherent, prompts, sampled))
        metrics |= {"sampled_coherence": round(coherence.mean, 4)} | coherence.bounds("sampled_coherence")
    if compared and all(compared):
        gain = paired_gain(scores, per_prompt(objective.score, prompts, compared))
        metrics |= {"sampled_gain": round(gain.mean, 4)} | gain.bounds("sampled_gain")
    return metrics


def objective_judge(objective: Objective) -> Judge:
    """The default judge of a win rate on an objective: its score; named `task:NAME` in reports."""
    return FunctionJudge(f"task:{objective.name}", objective.score)


def objective_evaluation(
    objective: Objective,
    model: str,
    prompts: list[str],
    answers: list[str],
    compared: tuple[str, list[str]] | None = None,
    judge: Judge | None = None,
    sampled: list[list[str]] | None = None,
    compared_sampled: list[list[str]] | None = None,
) -> Evaluation:
    """The evaluation of `model`'s `answers` to `prompts` (the objective's held-out prompts, or their first
    ones). `compared`: (the other model's name, its answers) for a win rate. Kept as "task:NAME" when on
    every held-out prompt (the loop's evaluations); one on fewer prompts is kept apart, "task:NAME[:N]".
    `sampled` (and the other model's `compared_sampled`): several sampled answers per prompt, for the sampled
    figures."""
    metrics: dict[str, Any] = objective_metrics(objective, prompts, answers)
    scores = [objective.score(p, a) for p, a in zip(prompts, answers, strict=True)]
    metrics |= bootstrap_mean(scores).bounds("task_score")
    if compared is not None:
        conversations = [[{"role": "user", "content": prompt}] for prompt in prompts]
        reference, reference_answers = compared
        judged = win_rate(judge or objective_judge(objective), conversations, answers, reference_answers)
        gain = paired_gain(scores, [objective.score(p, a) for p, a in zip(prompts, reference_answers, strict=True)])
        metrics |= judged | {"reference": reference, "gain": round(gain.mean, 4)} | gain.bounds("gain")
    if sampled is not None:
        metrics |= sampled_metrics(objective, prompts, sampled, compared_sampled)
    examples = [{"prompt": p, "answer": a, "reference": ""} for p, a in zip(prompts, answers, strict=True)][:5]
    name = f"task:{objective.name}"
    path = name if len(prompts) == len(objective.eval_prompts) else f"{name}[:{len(prompts)}]"
    return Evaluation(model, EvaluatedData(path, len(prompts), "task"), metrics | {"examples": examples})
