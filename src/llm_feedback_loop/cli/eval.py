"""`llmfl eval`: a model version on held-out data, its results kept with the version and written as JSON.

llmfl eval 3 --data exports/sft.jsonl      # BLEU, chrF, ROUGE-L of greedy answers against the references
llmfl eval 3 --data exports/dpo.jsonl      # preference accuracy: implicit reward against its parent
llmfl eval 4 --data exports/dpo.jsonl      # (a reward model) how often it scores chosen above rejected
llmfl eval 3 --task concise                # a task's programmatic score on its held-out prompts
llmfl eval 3 --data exports/sft.jsonl --judge 4                     # win rate judged by reward model 4
llmfl eval 3 --data exports/sft.jsonl --judge fn:my_judges:helpful  # ... by a Python function
llmfl eval 3 --data exports/sft.jsonl --judge http://127.0.0.1:8000/v1 --judge-model big   # ... by an LLM
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llm_feedback_loop.cli.common import console, fail, with_database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from llm_feedback_loop.evaluation.judges import Judge


def kind_of(rows: list[dict[str, Any]]) -> str:
    first = rows[0]
    if "chosen" in first:
        return "dpo"
    if "completion" in first and "label" not in first:
        return "sft"
    raise fail('--data must be an sft export ("prompt", "completion") or a dpo/reward export ("chosen", "rejected")')


def find(ref: str) -> tuple[Any, Any]:
    """(the version, its parent) of a registered ref; (None, None) for a folder or hub id."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from llm_feedback_loop.models.registry import find_version
    from llm_feedback_loop.storage.tables import ModelVersion

    async def run(engine: AsyncEngine) -> tuple[Any, Any]:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            version = await find_version(session, ref)
            parent = await session.get(ModelVersion, version.parent_id) if version and version.parent_id else None
            return version, parent

    return with_database(run)


def keep_with_version(version_id: int, result: dict[str, Any]) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    from llm_feedback_loop.loop.records import keep_evaluation

    async def run(engine: AsyncEngine) -> None:
        async with AsyncSession(engine) as session:
            await keep_evaluation(session, version_id, result)

    with_database(run)


def load_reward_model(judge: str) -> tuple[Any, Any]:
    """A reward model (a registered version, or a folder) and its tokenizer."""
    from transformers import AutoModelForSequenceClassification

    from llm_feedback_loop.models.loader import load_tokenizer, resolve_source

    version, _ = find(judge)
    folder = resolve_source(version.source if version else judge)
    return AutoModelForSequenceClassification.from_pretrained(folder).eval(), load_tokenizer(folder)


def judged(
    judge: str | Judge, asked: Asked, conversations: list[list[dict[str, str]]], answers: list[str]
) -> dict[str, Any]:
    """Win rate of `answers` against the reference model's answers to the same conversations."""
    from llm_feedback_loop.evaluation.answers import generate_answers
    from llm_feedback_loop.evaluation.judges import JudgeError, load_judge
    from llm_feedback_loop.evaluation.win_rate import win_rate
    from llm_feedback_loop.models.loader import load_model
    from llm_feedback_loop.objectives.base import TaskError

    if asked.reference is None:
        raise fail("a win rate needs the model to compare with: --reference (or a parent)")
    try:
        chosen = load_judge(judge, asked.judge_name, load_reward_model) if isinstance(judge, str) else judge
    except TaskError as error:
        raise fail(f"--judge: {error}") from None
    parent = load_model(asked.reference, device="cpu")
    parent_answers = generate_answers(parent.model, parent.tokenizer, conversations, asked.max_new_tokens)
    try:
        return win_rate(chosen, conversations, answers, parent_answers) | {"reference": asked.reference}
    except JudgeError as error:
        raise fail(str(error)) from None


@dataclass(frozen=True)
class Asked:
    """What an evaluation was asked for: the model, what to compare it with, and how."""

    source: str
    reference: str | None
    limit: int | None
    max_new_tokens: int
    judge: str | None
    judge_name: str | None


def evaluate_task(task_spec: str, asked: Asked) -> tuple[dict[str, Any], dict[str, Any]]:
    """A task's programmatic metrics on its held-out prompts; with a reference, the win rate (judged by the
    task's score unless --judge names another judge). Returns (metrics, what was evaluated on): the loop keeps
    its evaluations as "task:NAME" (every held-out prompt); one on fewer prompts is kept apart."""
    from llm_feedback_loop.evaluation.judges import FunctionJudge
    from llm_feedback_loop.loop.evaluate import answer_prompts, task_metrics
    from llm_feedback_loop.objectives.base import TaskError, load_task

    try:
        task = load_task(task_spec)
    except TaskError as error:
        raise fail(f"--task: {error}") from None
    prompts = task.eval_prompts[: asked.limit] if asked.limit else task.eval_prompts
    answers = answer_prompts(asked.source, prompts, asked.max_new_tokens)
    metrics: dict[str, Any] = task_metrics(task, prompts, answers)
    if asked.reference is not None or asked.judge is not None:
        conversations = [[{"role": "user", "content": prompt}] for prompt in prompts]
        by_score = FunctionJudge(f"task:{task.name}", task.score)
        metrics |= judged(asked.judge or by_score, asked, conversations, answers)
    examples = [{"prompt": p, "answer": a, "reference": ""} for p, a in zip(prompts, answers, strict=True)][:5]
    path = f"task:{task.name}" if len(prompts) == len(task.eval_prompts) else f"task:{task.name}[:{len(prompts)}]"
    return metrics | {"examples": examples}, {"path": path, "rows": len(prompts), "kind": "task"}


def evaluate_rows(kind: str, rows: list[dict[str, Any]], asked: Asked, reward_model: bool) -> dict[str, Any]:
    from llm_feedback_loop.evaluation.answers import generate_answers
    from llm_feedback_loop.evaluation.preference import policy_accuracy, reward_model_accuracy
    from llm_feedback_loop.evaluation.text_metrics import text_scores
    from llm_feedback_loop.models.loader import load_model, load_tokenizer, resolve_source
    from llm_feedback_loop.training.data import as_messages

    if reward_model:
        from transformers import AutoModelForSequenceClassification

        if kind != "dpo":
            raise fail("a reward model is evaluated on pairs: give a dpo/reward export")
        folder = resolve_source(asked.source)
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        return {"preference_accuracy": reward_model_accuracy(model, load_tokenizer(folder), rows)}
    loaded = load_model(asked.source, device="cpu")
    if kind == "sft":
        conversations = [as_messages(row["prompt"], "user") for row in rows]
        answers = generate_answers(loaded.model, loaded.tokenizer, conversations, asked.max_new_tokens)
        references = [
            row["completion"] if isinstance(row["completion"], str) else row["completion"][-1]["content"]
            for row in rows
        ]
        scores = asdict(text_scores(answers, references))
        if asked.judge is not None:
            scores |= judged(asked.judge, asked, conversations, answers)
        examples = [
            {"prompt": c[-1]["content"], "answer": a, "reference": r}
            for c, a, r in zip(conversations, answers, references, strict=True)
        ][:5]
        return scores | {"examples": examples}
    if asked.reference is None:
        raise fail("preference accuracy of a policy needs the model it was trained from: --reference (or a parent)")
    reference_model = load_model(asked.reference, device="cpu").model
    return {
        "preference_accuracy": policy_accuracy(loaded.model, reference_model, loaded.tokenizer, rows),
        "reference": asked.reference,
    }


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
    from llm_feedback_loop.models.loader import ModelLoadError

    if (data is None) == (task is None):
        raise fail("give --data EXPORT or --task TASK (one of them)")
    version, parent = find(model)
    asked = Asked(
        source=version.source if version else model,
        reference=reference or (parent.source if parent else None),
        limit=limit,
        max_new_tokens=max_new_tokens,
        judge=judge,
        judge_name=judge_model,
    )
    try:
        if task is not None:
            metrics, described = evaluate_task(task, asked)
        else:
            assert data is not None
            metrics, described = evaluate_export(data, version, asked)
    except ModelLoadError as error:
        raise fail(str(error)) from None
    keep_and_report(model, version, described, metrics, out)


def evaluate_export(data: Path, version: Any, asked: Asked) -> tuple[dict[str, Any], dict[str, Any]]:
    from llm_feedback_loop.training.data import DatasetError, jsonl_split_files, read_jsonl

    files = jsonl_split_files(data)
    chosen = files.get("test") or files["train"]
    if not chosen.is_file():
        raise fail(f"dataset {data} does not exist")
    lines = [line for line in chosen.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise fail(f"{chosen} holds no rows to evaluate")
    try:
        probe = json.loads(lines[0])
    except json.JSONDecodeError as error:
        raise fail(f"{chosen}:1: not valid JSON ({error.msg})") from None
    if not isinstance(probe, dict):
        raise fail(f"{chosen}:1: expected a JSON object")
    kind = kind_of([probe])
    errors: list[str] = []
    try:
        rows = read_jsonl(chosen, kind, errors)  # type: ignore[arg-type]
    except DatasetError as error:
        raise fail(str(error)) from None
    if errors:
        raise fail("bad rows; nothing evaluated:\n" + "\n".join(errors[:10]))
    rows = rows[: asked.limit] if asked.limit else rows
    metrics = evaluate_rows(kind, rows, asked, reward_model=bool(version and version.method == "reward"))
    return metrics, {"path": str(chosen), "rows": len(rows), "kind": kind}


def keep_and_report(model: str, version: Any, data: dict[str, Any], metrics: dict[str, Any], out: Path | None) -> None:
    """Keep the result with the version (without lists) and write the JSON and HTML reports."""
    from llm_feedback_loop.evaluation.report import render_report

    result = {
        "evaluated_at": datetime.now(UTC).isoformat(),
        "model": version.name if version else model,
        "data": data,
        "metrics": metrics,
    }
    if version is not None:
        keep_with_version(
            version.id,
            {key: value for key, value in result.items() if key != "metrics"}
            | {"metrics": {key: value for key, value in metrics.items() if not isinstance(value, list)}},
        )
    out = out or Path("evaluations") / f"{result['model'].replace('/', '_')}-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    html = out.with_suffix(".html")
    html.write_text(render_report(result), encoding="utf-8")
    shown = {key: value for key, value in metrics.items() if isinstance(value, int | float)}
    console.print(
        f"{result['model']} on {data['rows']} {data['kind']} rows of {data['path']}: "
        + ", ".join(f"{k} {v:.4g}" for k, v in shown.items())
    )
    console.print(f"  report: {html} (and {out.name})")
