"""The loop's evaluation stage: a version on the objective's held-out prompts (greedy answers, computed once
and kept in the loop's folder), and a candidate's win rate against its base judged by the objective's score.
The metrics and the record kept with the version are `llm_feedback_loop.evaluation`'s, as for `llmfl eval`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llm_feedback_loop.evaluation.judges import JudgeError
from llm_feedback_loop.loop.context import LoopError, LoopRun
from llm_feedback_loop.models.loader import ModelLoadError
from llm_feedback_loop.storage.tables import ModelVersion


def answers_path(run: LoopRun, name: str) -> Path:
    """Where a version's held-out answers are kept: by its name and the answer length (ids are reused
    when a database is made anew)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return run.settings.folder / "answers" / f"{safe}-{run.settings.eval_max_tokens}tok.json"


def answers_of(run: LoopRun, version: ModelVersion) -> list[str]:
    """The version's greedy answers to the held-out prompts (computed once, kept in the loop's folder)."""
    from llm_feedback_loop.evaluation.answers import answer_prompts

    path = answers_path(run, version.name)
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    prompts = run.settings.objective.eval_prompts
    run.say(f"  answering {len(prompts)} held-out prompts with {version.name}")
    try:
        answers = answer_prompts(version.source, prompts, run.settings.eval_max_tokens)
    except ModelLoadError as error:
        raise LoopError(f"cannot evaluate {version.name}: {error}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(answers, ensure_ascii=False, indent=1), encoding="utf-8")
    partial.replace(path)  # never a half-written file
    return answers


def evaluate_version(run: LoopRun, version: ModelVersion, against: ModelVersion | None) -> dict[str, Any]:
    """The objective's metrics of a version (and its win rate against `against`), kept with the version;
    returns the metrics as kept."""
    from llm_feedback_loop.evaluation.objective import objective_evaluation
    from llm_feedback_loop.evaluation.versions import keep_evaluation

    objective = run.settings.objective
    answers = answers_of(run, version)
    compared = (against.name, answers_of(run, against)) if against is not None else None
    try:
        evaluation = objective_evaluation(objective, version.name, objective.eval_prompts, answers, compared)
    except JudgeError as error:
        raise LoopError(str(error)) from None
    except Exception as error:  # the objective's own code
        raise LoopError(f"task {objective.name}'s score failed: {type(error).__name__}: {error}") from None
    run.session(lambda s: keep_evaluation(s, version.id, evaluation))
    return evaluation.kept_metrics


def metrics_of(run: LoopRun, version: ModelVersion) -> dict[str, Any]:
    """The version's latest metrics on the objective, evaluating it first if it has none."""
    from llm_feedback_loop.evaluation.versions import latest_evaluation

    found = latest_evaluation(version, run.settings.data_path)
    if found is not None and answers_path(run, version.name).is_file():
        return found["metrics"]
    return evaluate_version(run, version, None)
