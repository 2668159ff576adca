"""`llmfl eval`: a model version on held-out data, its results kept with the version and written as JSON.

llmfl eval 3 --data exports/sft.jsonl      # BLEU, chrF, ROUGE-L of greedy answers against the references
llmfl eval 3 --data exports/dpo.jsonl      # preference accuracy: implicit reward against its parent
llmfl eval 4 --data exports/dpo.jsonl      # (a reward model) how often it scores chosen above rejected
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llm_feedback_loop.cli_common import console, fail, with_database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


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

    from llm_feedback_loop.storage.tables import ModelVersion

    async def run(engine: AsyncEngine) -> None:
        async with AsyncSession(engine) as session:
            version = await session.get(ModelVersion, version_id)
            assert version is not None
            metadata = dict(version.extra or {})
            metadata["evaluations"] = [*metadata.get("evaluations", []), result]
            version.extra = metadata
            await session.commit()

    with_database(run)


def judge_model(judge: str) -> tuple[Any, Any]:
    """A reward model (a registered version, or a folder) and its tokenizer."""
    from transformers import AutoModelForSequenceClassification

    from llm_feedback_loop.models.loader import load_tokenizer, resolve_source

    version, _ = find(judge)
    folder = resolve_source(version.source if version else judge)
    return AutoModelForSequenceClassification.from_pretrained(folder).eval(), load_tokenizer(folder)


def evaluate_rows(
    kind: str,
    rows: list[dict[str, Any]],
    source: str,
    reference: str | None,
    reward_model: bool,
    max_new_tokens: int,
    judge: str | None = None,
) -> dict[str, Any]:
    from llm_feedback_loop.evaluation.answers import generate_answers
    from llm_feedback_loop.evaluation.preference import policy_accuracy, reward_model_accuracy
    from llm_feedback_loop.evaluation.text_metrics import text_scores
    from llm_feedback_loop.models.loader import load_model, load_tokenizer, resolve_source
    from llm_feedback_loop.training.data import as_messages

    if reward_model:
        from transformers import AutoModelForSequenceClassification

        if kind != "dpo":
            raise fail("a reward model is evaluated on pairs: give a dpo/reward export")
        folder = resolve_source(source)
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        return {"preference_accuracy": reward_model_accuracy(model, load_tokenizer(folder), rows)}
    loaded = load_model(source, device="cpu")
    if kind == "sft":
        conversations = [as_messages(row["prompt"], "user") for row in rows]
        answers = generate_answers(loaded.model, loaded.tokenizer, conversations, max_new_tokens)
        references = [
            row["completion"] if isinstance(row["completion"], str) else row["completion"][-1]["content"]
            for row in rows
        ]
        scores = asdict(text_scores(answers, references))
        if judge is not None:
            if reference is None:
                raise fail("a win rate needs the model to compare with: --reference (or a parent)")
            from llm_feedback_loop.evaluation.win_rate import win_rate

            parent = load_model(reference, device="cpu")
            parent_answers = generate_answers(parent.model, parent.tokenizer, conversations, max_new_tokens)
            judge_loaded, judge_tokenizer = judge_model(judge)
            scores |= win_rate(judge_loaded, judge_tokenizer, conversations, answers, parent_answers)
            scores["judge"] = judge
            scores["reference"] = reference
        examples = [
            {"prompt": c[-1]["content"], "answer": a, "reference": r}
            for c, a, r in zip(conversations, answers, references, strict=True)
        ][:5]
        return scores | {"examples": examples}
    if reference is None:
        raise fail("preference accuracy of a policy needs the model it was trained from: --reference (or a parent)")
    reference_model = load_model(reference, device="cpu").model
    return {
        "preference_accuracy": policy_accuracy(loaded.model, reference_model, loaded.tokenizer, rows),
        "reference": reference,
    }


def eval_command(
    model: Annotated[str, typer.Argument(help="A version (id or name), a hub id or a model folder.")],
    data: Annotated[Path, typer.Option(help="An export: its test split if it has one, else every row.")],
    reference: Annotated[
        str | None, typer.Option(help="Reference of the implicit reward (default: the version's parent).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate at most this many rows.")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Length of each generated answer.")] = 64,
    judge: Annotated[
        str | None, typer.Option(help="sft data: a reward model that judges our answers against the reference's.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="JSON report (default: evaluations/NAME-TIME.json).")] = None,
) -> None:
    """Evaluate a model on held-out data; the result is kept with the version and written as JSON."""
    from llm_feedback_loop.evaluation.report import render_report
    from llm_feedback_loop.models.loader import ModelLoadError
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
    rows = rows[:limit] if limit else rows
    version, parent = find(model)
    source = version.source if version else model
    reward_model = bool(version and version.method == "reward")
    reference = reference or (parent.source if parent else None)
    try:
        metrics = evaluate_rows(kind, rows, source, reference, reward_model, max_new_tokens, judge)
    except ModelLoadError as error:
        raise fail(str(error)) from None
    result = {
        "evaluated_at": datetime.now(UTC).isoformat(),
        "model": version.name if version else model,
        "data": {"path": str(chosen), "rows": len(rows), "kind": kind},
        "metrics": metrics,
    }
    if version is not None:
        keep_with_version(
            version.id,
            {key: value for key, value in result.items() if key != "metrics"}
            | {"metrics": {key: value for key, value in metrics.items() if key != "examples"}},
        )
    out = out or Path("evaluations") / f"{result['model'].replace('/', '_')}-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    html = out.with_suffix(".html")
    html.write_text(render_report(result), encoding="utf-8")
    shown = {key: value for key, value in metrics.items() if isinstance(value, int | float)}
    console.print(
        f"{result['model']} on {len(rows)} {kind} rows of {chosen.name}: "
        + ", ".join(f"{k} {v:.4g}" for k, v in shown.items())
    )
    console.print(f"  report: {html} (and {out.name})")
