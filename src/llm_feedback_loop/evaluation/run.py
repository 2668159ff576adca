"""Evaluate a model on held-out data: an export's rows (`ExportRows`, read and checked by the caller) or an
objective's held-out prompts. What `llmfl eval` runs; the result is an `Evaluation` (`result.py`), which
`versions.py` keeps with the version and `report.py` writes as JSON and HTML.

- an sft export: BLEU, chrF, ROUGE-L of greedy answers against the references (and, with a judge, the win
  rate against the reference model's answers);
- a dpo/reward export: preference accuracy, the implicit reward of a policy against its reference, or how
  often a reward model scores chosen above rejected;
- an objective: its programmatic metrics and, with a reference, the win rate judged by its score (or a judge).

Errors a user can meet are `EvaluationError`s (and `JudgeError`, `ModelLoadError`), never a stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llm_feedback_loop.evaluation.judges import Judge
from llm_feedback_loop.evaluation.result import DataKind, EvaluatedData, Evaluation, EvaluationError, JudgeSpecError
from llm_feedback_loop.objectives.base import Objective, ObjectiveError

Conversations = list[list[dict[str, str]]]


@dataclass(frozen=True)
class EvaluationRequest:
    """What an evaluation is asked for: the model, what to compare it with, and how."""

    model: str  # its name in the result: the version's name, or the folder or hub id
    source: str  # where its weights are
    reference: str | None = None  # the model compared with (implicit reward, win rate): its source
    limit: int | None = None  # at most this many rows or prompts
    max_new_tokens: int = 64
    judge: str | None = None  # a win rate's judge: a reward model, fn:MODULE:FUNCTION or a chat URL
    judge_model: str | None = None  # the model a chat-URL judge asks for
    reward_model: bool = False  # the model is a reward model (scored on pairs, it does not answer)


def identity(ref: str) -> str:
    return ref


def load_reward_model(ref: str, source_of: Callable[[str], str] = identity) -> tuple[Any, Any]:
    """A reward model (`source_of(ref)`: a registered version's source, else the ref itself) and its tokenizer."""
    from transformers import AutoModelForSequenceClassification

    from llm_feedback_loop.models.loader import load_tokenizer, resolve_source

    folder = resolve_source(source_of(ref))
    return AutoModelForSequenceClassification.from_pretrained(folder).eval(), load_tokenizer(folder)


def chosen_judge(asked: EvaluationRequest, source_of: Callable[[str], str]) -> Judge:
    from llm_feedback_loop.evaluation.judges import load_judge

    assert asked.judge is not None
    try:
        return load_judge(asked.judge, asked.judge_model, lambda ref: load_reward_model(ref, source_of))
    except ObjectiveError as error:
        raise JudgeSpecError(str(error)) from None


def reference_of(asked: EvaluationRequest) -> str:
    if asked.reference is None:
        raise EvaluationError("a win rate needs the model to compare with: --reference (or a parent)")
    return asked.reference


def judged_win_rate(
    asked: EvaluationRequest, judge: Judge, conversations: Conversations, answers: list[str]
) -> dict[str, Any]:
    """Win rate of `answers` against the reference model's answers to the same conversations."""
    from llm_feedback_loop.evaluation.answers import generate_answers
    from llm_feedback_loop.evaluation.win_rate import win_rate
    from llm_feedback_loop.models.loader import load_model

    reference = reference_of(asked)
    parent = load_model(reference, device="cpu")
    parent_answers = generate_answers(parent.model, parent.tokenizer, conversations, asked.max_new_tokens)
    return win_rate(judge, conversations, answers, parent_answers) | {"reference": reference}


def evaluate_objective(
    objective: Objective, asked: EvaluationRequest, source_of: Callable[[str], str] = identity
) -> Evaluation:
    """The objective's metrics on its held-out prompts (the first `limit`); with a reference or a judge, the
    win rate against the reference (judged by the objective's score unless `asked.judge` names another)."""
    from llm_feedback_loop.evaluation.answers import answer_prompts
    from llm_feedback_loop.evaluation.objective import objective_evaluation

    prompts = objective.eval_prompts[: asked.limit] if asked.limit else objective.eval_prompts
    answers = answer_prompts(asked.source, prompts, asked.max_new_tokens)
    if asked.reference is None and asked.judge is None:
        return objective_evaluation(objective, asked.model, prompts, answers)
    reference = reference_of(asked)
    judge = chosen_judge(asked, source_of) if asked.judge is not None else None
    compared = (reference, answer_prompts(reference, prompts, asked.max_new_tokens))
    return objective_evaluation(objective, asked.model, prompts, answers, compared, judge)


@dataclass(frozen=True)
class ExportRows:
    """Held-out rows of an export, read and checked: the file they came from, their kind, the rows."""

    path: str
    kind: DataKind
    rows: list[dict[str, Any]]


def evaluate(
    asked: EvaluationRequest,
    data: ExportRows | None = None,
    objective: Objective | None = None,
    source_of: Callable[[str], str] = identity,
) -> Evaluation:
    """The model on an export's rows (`data`) or on an objective's held-out prompts (one of them).
    `source_of(ref)`: where a model named by a judge or reference is (a registered version's source)."""
    if (data is None) == (objective is None):
        raise EvaluationError("give --data EXPORT or --task TASK (one of them)")
    if objective is not None:
        return evaluate_objective(objective, asked, source_of)
    assert data is not None
    return evaluate_export(data, asked, source_of)


def evaluated_kind(row: dict[str, Any]) -> DataKind:
    """What an export's first row says it holds, of the kinds evaluation reads."""
    if "chosen" in row:
        return "dpo"
    if "completion" in row and "label" not in row:
        return "sft"
    raise EvaluationError(
        '--data must be an sft export ("prompt", "completion") or a dpo/reward export ("chosen", "rejected")'
    )


def evaluate_export(
    data: ExportRows, asked: EvaluationRequest, source_of: Callable[[str], str] = identity
) -> Evaluation:
    """The model on an export's held-out rows (the first `limit`)."""
    rows = data.rows[: asked.limit] if asked.limit else data.rows
    if asked.reward_model:
        metrics = reward_model_metrics(data.kind, rows, asked)
    elif data.kind == "sft":
        metrics = answer_metrics(rows, asked, source_of)
    else:
        metrics = policy_metrics(rows, asked)
    return Evaluation(asked.model, EvaluatedData(data.path, len(rows), data.kind), metrics)


def reward_model_metrics(kind: DataKind, rows: list[dict[str, Any]], asked: EvaluationRequest) -> dict[str, Any]:
    from llm_feedback_loop.evaluation import preference

    if kind != "dpo":
        raise EvaluationError("a reward model is evaluated on pairs: give a dpo/reward export")
    model, tokenizer = load_reward_model(asked.source)
    return preference.reward_model_metrics(model, tokenizer, rows)  # pair accuracy and calibration


def answer_metrics(
    rows: list[dict[str, Any]], asked: EvaluationRequest, source_of: Callable[[str], str]
) -> dict[str, Any]:
    """Text metrics of greedy answers against an sft export's completions (and a judged win rate)."""
    from llm_feedback_loop.evaluation.answers import generate_answers
    from llm_feedback_loop.evaluation.text_metrics import text_scores
    from llm_feedback_loop.models.loader import load_model
    from llm_feedback_loop.training_data.kinds import as_messages

    loaded = load_model(asked.source, device="cpu")
    conversations = [as_messages(row["prompt"], "user") for row in rows]
    answers = generate_answers(loaded.model, loaded.tokenizer, conversations, asked.max_new_tokens)
    references = [
        row["completion"] if isinstance(row["completion"], str) else row["completion"][-1]["content"] for row in rows
    ]
    scores = asdict(text_scores(answers, references))
    if asked.judge is not None:
        reference_of(asked)  # before the judge is loaded: a reward model takes a while
        scores |= judged_win_rate(asked, chosen_judge(asked, source_of), conversations, answers)
    examples = [
        {"prompt": c[-1]["content"], "answer": a, "reference": r}
        for c, a, r in zip(conversations, answers, references, strict=True)
    ][:5]
    return scores | {"examples": examples}


def policy_metrics(rows: list[dict[str, Any]], asked: EvaluationRequest) -> dict[str, Any]:
    """Preference accuracy of a policy: its implicit reward against the model it was trained from."""
    from llm_feedback_loop.evaluation.preference import policy_accuracy
    from llm_feedback_loop.models.loader import load_model

    if asked.reference is None:
        raise EvaluationError(
            "preference accuracy of a policy needs the model it was trained from: --reference (or a parent)"
        )
    loaded = load_model(asked.source, device="cpu")
    reference_model = load_model(asked.reference, device="cpu").model
    return {
        "preference_accuracy": policy_accuracy(loaded.model, reference_model, loaded.tokenizer, rows),
        "reference": asked.reference,
    }


def read_export(data: Path) -> ExportRows:
    """The rows to evaluate of an export: its test split if it has one, else every row; each checked."""
    from llm_feedback_loop.training_data.files import DatasetError, jsonl_split_files, read_jsonl

    files = jsonl_split_files(data)
    chosen = files.get("test") or files["train"]
    if not chosen.is_file():
        raise EvaluationError(f"dataset {data} does not exist")
    lines = [line for line in chosen.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise EvaluationError(f"{chosen} holds no rows to evaluate")
    try:
        probe = json.loads(lines[0])
    except json.JSONDecodeError as error:
        raise EvaluationError(f"{chosen}:1: not valid JSON ({error.msg})") from None
    if not isinstance(probe, dict):
        raise EvaluationError(f"{chosen}:1: expected a JSON object")
    try:
        kind = evaluated_kind(probe)
        errors: list[str] = []
        rows = read_jsonl(chosen, kind, errors)
    except DatasetError as error:
        raise EvaluationError(str(error)) from None
    if errors:
        raise EvaluationError("bad rows; nothing evaluated:\n" + "\n".join(errors[:10]))
    return ExportRows(str(chosen), kind, rows)
