"""`llmfl eval`: a model version on held-out data, its results kept with the version and written as JSON.

llmfl eval 3 --data exports/sft.jsonl      # BLEU, chrF, ROUGE-L of greedy answers against the references
llmfl eval 3 --data exports/dpo.jsonl      # preference accuracy: implicit reward against its parent
llmfl eval 4 --data exports/dpo.jsonl      # (a reward model) how often it scores chosen above rejected
llmfl eval 3 --task concise                # an objective's programmatic score on its held-out prompts
llmfl eval 3 --data exports/sft.jsonl --judge 4                     # win rate judged by reward model 4
llmfl eval 3 --data exports/sft.jsonl --judge fn:my_judges:helpful  # ... by a Python function
llmfl eval 3 --data exports/sft.jsonl --judge http://127.0.0.1:8000/v1 --judge-model big   # ... by an LLM

The evaluation itself is `llm_feedback_loop.evaluation.evaluate` (and `evaluation.run.read_export` reads the
export); this module parses the options, finds the version in the registry, keeps the result with it and
prints it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llm_feedback_loop.cli.common import console, fail, with_database
from llm_feedback_loop.evaluation.result import EvaluationError
from llm_feedback_loop.storage.database import in_session

if TYPE_CHECKING:
    from llm_feedback_loop.evaluation.result import Evaluation


def find(ref: str) -> tuple[Any, Any]:
    """(the version, its parent) of a registered ref; (None, None) for a folder or hub id."""
    from llm_feedback_loop.evaluation.versions import version_and_parent

    return in_session(with_database, lambda session: version_and_parent(session, ref))


def source_of(ref: str) -> str:
    """Where the model `ref` names is: a registered version's source, else the ref (a folder or hub id)."""
    version, _ = find(ref)
    return version.source if version else ref


def keep_with_version(version_id: int, evaluation: Evaluation) -> None:
    from llm_feedback_loop.evaluation.versions import keep_evaluation

    in_session(with_database, lambda session: keep_evaluation(session, version_id, evaluation))


def eval_command(
    model: Annotated[str, typer.Argument(help="A version (id or name), a hub id or a model folder.")],
    data: Annotated[Path | None, typer.Option(help="An export: its test split if it has one, else every row.")] = None,
    task: Annotated[
        str | None, typer.Option(help="A loop task (concise, MODULE:NAME): its score on its held-out prompts.")
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="Reference of the implicit reward (default: the version's parent).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate at most this many rows.")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Length of each generated answer.")] = 64,
    judge: Annotated[
        str | None,
        typer.Option(
            help="Win rate against the reference, judged by: a reward model (version or folder), "
            "fn:MODULE:FUNCTION (a Python function of prompt and answer), or an OpenAI-compatible URL."
        ),
    ] = None,
    judge_model: Annotated[str | None, typer.Option(help="--judge URL: the model asked.")] = None,
    out: Annotated[Path | None, typer.Option(help="JSON report (default: evaluations/NAME-TIME.json).")] = None,
) -> None:
    """Evaluate a model on held-out data; the result is kept with the version and written as JSON and HTML."""
    from llm_feedback_loop.evaluation import EvaluationRequest, JudgeSpecError, evaluate
    from llm_feedback_loop.evaluation.judges import JudgeError
    from llm_feedback_loop.evaluation.report import write_reports
    from llm_feedback_loop.evaluation.run import read_export
    from llm_feedback_loop.models.loader import ModelLoadError
    from llm_feedback_loop.objectives.base import ObjectiveError, load_objective
    from llm_feedback_loop.training.methods import makes_reward_model

    if (data is None) == (task is None):
        raise fail("give --data EXPORT or --task TASK (one of them)")
    version, parent = find(model)
    asked = EvaluationRequest(
        model=version.name if version else model,
        source=version.source if version else model,
        reference=reference or (parent.source if parent else None),
        limit=limit,
        max_new_tokens=max_new_tokens,
        judge=judge,
        judge_model=judge_model,
        reward_model=bool(version and makes_reward_model(version.method)),
    )
    try:
        objective = load_objective(task) if task is not None else None
    except ObjectiveError as error:
        raise fail(f"--task: {error}") from None
    try:
        rows = read_export(data) if data is not None else None
    except EvaluationError as error:
        raise fail(str(error)) from None
    try:
        evaluation = evaluate(asked, rows, objective, source_of)
    except JudgeSpecError as error:
        raise fail(f"--judge: {error}") from None
    except (EvaluationError, JudgeError, ModelLoadError) as error:
        raise fail(str(error)) from None
    if version is not None:
        keep_with_version(version.id, evaluation)
    out, html = write_reports(evaluation, out)
    shown = {key: value for key, value in evaluation.metrics.items() if isinstance(value, int | float)}
    console.print(
        f"{evaluation.model} on {evaluation.data.rows} {evaluation.data.kind} rows of {evaluation.data.path}: "
        + ", ".join(f"{k} {v:.4g}" for k, v in shown.items())
    )
    console.print(f"  report: {html} (and {out.name})")
