"""An objective's metrics and win rate on fixed answers, and what a version keeps of an evaluation."""

from __future__ import annotations

from llm_feedback_loop.evaluation.objective import objective_evaluation, objective_metrics
from llm_feedback_loop.evaluation.result import EvaluatedData, Evaluation
from llm_feedback_loop.objectives.concise import TASK


def test_objective_metrics_on_fixed_answers() -> None:
    prompts = ["What is the capital of Peru?", "What is the capital of Peru?", "What is 3 plus 2?", "What is 3 plus 2?"]
    answers = [
        "The capital of Peru is Lima.",  # complies, coherent, correct
        "Peru is a country. Its capital is Lima, a city on the coast.",  # two sentences
        "Bananas are yellow.",  # complies, off topic
        "3 plus 2 equals 5.",  # complies, coherent, correct
    ]
    assert objective_metrics(TASK, prompts, answers) == {
        "task_score": 0.75,
        "coherence": 0.75,
        "correct": 0.75,
        "mean_words": 6.75,  # (6 + 13 + 3 + 5) / 4
    }


def test_win_rate_counts_ties_as_half_and_is_judged_by_the_objective() -> None:
    prompts = ["p1", "p2", "p3", "p4"]
    candidate = ["Short.", "Short.", "A b. C d.", "Short."]
    base = ["A b. C d.", "Short.", "Short.", "A b. C d."]
    evaluation = objective_evaluation(TASK, "v2", prompts, candidate, ("v1", base))
    metrics = evaluation.metrics
    assert {key: metrics[key] for key in ("win_rate", "wins", "ties", "losses")} == {
        "win_rate": 0.625,
        "wins": 2,
        "ties": 1,
        "losses": 1,
    }
    assert metrics["judge"] == "task:concise" and metrics["reference"] == "v1"
    assert evaluation.data == EvaluatedData("task:concise[:4]", 4, "task")  # fewer prompts: kept apart


def test_a_version_keeps_an_evaluation_without_its_lists() -> None:
    evaluation = Evaluation(
        "v2",
        EvaluatedData(f"task:{TASK.name}", len(TASK.eval_prompts), "task"),
        {"task_score": 0.5, "candidate_rewards": [1.0], "examples": [{"prompt": "p", "answer": "a"}]},
        evaluated_at="2025-01-01T00:00:00+00:00",
    )
    assert evaluation.kept() == {
        "evaluated_at": "2025-01-01T00:00:00+00:00",
        "model": "v2",
        "data": {"path": "task:concise", "rows": len(TASK.eval_prompts), "kind": "task"},
        "metrics": {"task_score": 0.5},
    }
    assert evaluation.report()["metrics"]["candidate_rewards"] == [1.0]


def test_sampled_answers_are_averaged_per_prompt_and_their_gain_is_paired() -> None:
    prompts = ["What is the capital of Peru?", "What is 3 plus 2?"]
    greedy = ["The capital of Peru is Lima.", "3 plus 2 equals 5."]
    sampled = [
        ["Lima.", "Peru is a country. Its capital is Lima, a city on the coast."],  # 1 of 2 complies
        ["5.", "3 plus 2 is 5."],  # both comply, and both name the expected answer: coherent
    ]
    base_sampled = [["Peru is big. Lima is its capital."] * 2, ["Bananas are yellow.", "Two. Or five."]]
    evaluation = objective_evaluation(TASK, "v2", prompts, greedy, ("v1", greedy), None, sampled, base_sampled)
    metrics = evaluation.metrics
    assert metrics["samples_per_prompt"] == 2
    assert metrics["sampled_task_score"] == 0.75  # (1/2 + 2/2) / 2
    assert metrics["sampled_coherence"] == 1.0
    assert metrics["sampled_gain"] == 0.5  # per prompt: 0.5 - 0, 1.0 - 0.5
    assert metrics["sampled_gain_low"] == 0.5 and metrics["sampled_gain_high"] == 0.5  # the same gain on both
    assert metrics["gain"] == 0.0  # the greedy answers are the same
    assert "sampled_task_score" not in objective_evaluation(TASK, "v2", prompts, greedy).metrics  # none given
