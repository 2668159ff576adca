"""`llmfl runs`: the record of every training run: what it trained, on what data, from which version, with what
result.

llmfl runs list
llmfl runs show 3
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from llm_feedback_loop.cli.common import console, fail, with_database

runs_app = typer.Typer(help="Training runs: what each trained, on what data, from which version, with what result.")


@runs_app.command("list")
def runs_list(limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20) -> None:
    """List training runs, newest first."""
    from llm_feedback_loop.storage.database import in_session
    from llm_feedback_loop.training.runs import list_runs

    runs: list[Any] = in_session(with_database, lambda session: list_runs(session, limit))
    if not runs:
        console.print("no training runs yet: `llmfl train sft --data ...` starts one")
        return
    table = Table("id", "method", "status", "parent", "output version", "steps", "loss", "pref. acc.", "started")
    for item in runs:
        metrics = item.metrics or {}
        loss = metrics.get("last_loss")
        accuracy = metrics.get("preference_accuracy")
        table.add_row(
            str(item.id),
            item.method,
            item.status,
            str(item.parent_version_id or item.base_source or ""),
            str(item.output_version_id or ""),
            str(metrics.get("global_step", "")),
            f"{loss:.4f}" if isinstance(loss, float) else "",
            f"{accuracy:.3f}" if isinstance(accuracy, float) else "",
            item.started_at.strftime("%Y-%m-%d %H:%M") if item.started_at else "",
        )
    Console().print(table)


@runs_app.command("show")
def runs_show(run_id: Annotated[int, typer.Argument(help="Run id.")]) -> None:
    """Everything recorded about a run: config, dataset and hashes, parent, output, metrics, error."""
    import json

    from llm_feedback_loop.storage.database import in_session
    from llm_feedback_loop.training.runs import describe_run, get_run

    found = in_session(with_database, lambda session: get_run(session, run_id))
    if found is None:
        raise fail(f"no training run {run_id}; `llmfl runs list` shows them")
    typer.echo(json.dumps(describe_run(found), indent=2, default=str, ensure_ascii=False))
