"""What the simulated annotator says of scored answers, the promotion rule on an objective's metrics, and the
loop's report."""

from __future__ import annotations

from llm_feedback_loop.loop.budget import judgement
from llm_feedback_loop.models.promotion import decide


def test_thumbs_on_every_answer_and_a_ranking_only_for_a_strict_order() -> None:
    assert judgement([1.0, 0.0, 1.0, 0.0]) == (None, ["up", "down", "up", "down"])
    assert judgement([0.2, 0.9, 0.5]) == ([1, 2, 0], ["down", "up", "up"])
    assert judgement([0.0, 0.0]) == (None, ["down", "down"])


def evaluation(metrics: dict) -> dict:
    return {"evaluations": [{"data": {"path": "task:concise"}, "metrics": metrics}]}


def test_promotion_rule_on_objective_metrics() -> None:
    base = evaluation({"task_score": 0.40, "coherence": 0.90, "correct": 0.50})
    better = evaluation({"task_score": 0.60, "coherence": 0.88, "correct": 0.49, "win_rate": 0.62})
    assert decide(better, base, 0.55, 5.0, {"correct": 100.0}).promote
    incoherent = evaluation({"task_score": 0.90, "coherence": 0.70, "correct": 0.49, "win_rate": 0.70})
    decision = decide(incoherent, base, 0.55, 5.0, {"correct": 100.0})
    assert not decision.promote and "coherence" in decision.reasons[0]
    forgetful = evaluation({"task_score": 0.90, "coherence": 0.90, "correct": 0.30, "win_rate": 0.70})
    assert not decide(forgetful, base, 0.55, 5.0, {"correct": 100.0}).promote


def test_the_loop_report_escapes_model_text(tmp_path) -> None:
    from llm_feedback_loop.loop.report import write_report

    hostile = "<script>alert(1)</script>"
    rounds = [
        {"round": 0, "status": "completed", "base": "v<1>", "candidate": None, "promoted": None,
         "metrics": {"base": {"task_score": 0.3, "coherence": 1.0}}, "decision": None, "error": None},
        {"round": 1, "status": "completed", "base": "v<1>", "candidate": hostile, "promoted": False,
         "metrics": {"base": {"task_score": 0.3}, "candidate": {"task_score": 0.1, "win_rate": 0.2}},
         "decision": [hostile], "error": None, "feedback": {"prompts": 2}, "data": {"dpo": {"rows": 3}}},
    ]  # fmt: skip
    objective = {"name": "t", "description": hostile, "eval_prompts": 1, "prompts": [hostile]}
    path = write_report(tmp_path, "loop<x>", objective, rounds, ("v<1>", [hostile]), (hostile, [hostile]))
    html = path.read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html and "<svg" in html
    assert "0.300 → 0.100" in html and "kept the base" in html
