"""`llmfl`: the command line of llm-feedback-loop.

llmfl serve                      # the feedback service on 127.0.0.1:3000
llmfl export dpo --out exports/pairs.jsonl --strategy best-vs-rest --test-size 0.1
llmfl import feedback.jsonl      # the original project's data (JSON, JSONL, mongoexport)
llmfl train sft --data exports/sft.jsonl --lora   # then: llmfl train dpo --model <that version> ...
llmfl db upgrade                 # create or migrate the database (every command does this first)
llmfl loop --rounds 2            # rounds of generate → feedback → train → evaluate → promote
llmfl demo                       # the loop offline on a CPU, with a simulated annotator
"""

from __future__ import annotations

import typer

from llm_feedback_loop import __version__
from llm_feedback_loop.cli.accounts import keys_app, users_app
from llm_feedback_loop.cli.common import command_database
from llm_feedback_loop.cli.db import db_app
from llm_feedback_loop.cli.eval import eval_command
from llm_feedback_loop.cli.export import export_command
from llm_feedback_loop.cli.imports import import_command
from llm_feedback_loop.cli.loop import demo_command, loop_command
from llm_feedback_loop.cli.models import model_app, models_app
from llm_feedback_loop.cli.runs import runs_app
from llm_feedback_loop.cli.serve import serve, serve_model
from llm_feedback_loop.cli.train import train_command

app = typer.Typer(help="Close the loop between human feedback on LLM answers and training.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(model_app, name="model")
app.add_typer(models_app, name="models")
app.add_typer(runs_app, name="runs")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.command("train")(train_command)
app.command("eval")(eval_command)
app.command("loop")(loop_command)
app.command("demo")(demo_command)


@app.callback()
def one_database_per_command(ctx: typer.Context) -> None:
    # Every command shares one database context (opened on first use), closed when the command ends.
    ctx.with_resource(command_database())


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


app.command()(serve)
app.command("serve-model")(serve_model)
app.command("export")(export_command)
app.command("import")(import_command)


def main() -> None:
    app()
