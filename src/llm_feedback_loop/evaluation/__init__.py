"""Evaluation of model versions on held-out data: text metrics, preference accuracy, win rates, an
objective's score. `evaluate` (run.py) makes an `Evaluation` (result.py); `keep_evaluation` (versions.py)
keeps it with the version; `write_reports` (report.py) writes it as JSON and HTML."""

from llm_feedback_loop.evaluation.result import EvaluatedData, Evaluation, EvaluationError, JudgeSpecError
from llm_feedback_loop.evaluation.run import EvaluationRequest, evaluate

__all__ = ["EvaluatedData", "Evaluation", "EvaluationError", "EvaluationRequest", "JudgeSpecError", "evaluate"]
