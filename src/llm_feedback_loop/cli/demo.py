"""`llmfl demo`: the loop on a style objective with a simulated annotator, offline on a CPU, in a folder of
its own (its own SQLite database and checkpoints: one Settings object built here and passed down, to the
loop's service and `llmfl train` processes as their environment).

llmfl demo                                            # SmolLM2, two rounds, about 11 minutes on 2 cores
llmfl demo --model tiny --rounds 1                    # random weights: fast, not coherent
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llm_feedback_loop.cli.common import console, fail, use_settings, with_database

if TYPE_CHECKING:
    from llm_feedback_loop.settings import Settings

DEMO_MARKER = ".llmfl-demo"


def prepare_demo_folder(folder: Path) -> None:
    """A fresh demo folder: one made by an earlier demo is emptied; any other non-empty folder is refused."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / DEMO_MARKER).is_file():
            raise fail(f"{folder} exists and was not made by `llmfl demo`; choose another --folder")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text("made by llmfl demo; emptied when the demo runs again\n", encoding="utf-8")


def demo_settings(folder: Path, base_model: str | None) -> Settings:
    """The environment's settings, with the demo's own database, base model and checkpoints."""
    from pydantic import ValidationError

    from llm_feedback_loop.settings import Settings

    try:
        return Settings(
            database_url=f"sqlite+aiosqlite:///{folder / 'demo.db'}",
            base_model=base_model,
            checkpoint_dir=folder / "checkpoints",
        )
    except ValidationError as error:
        raise fail("invalid settings (environment or .env): " + "; ".join(e["msg"] for e in error.errors())) from None


def demo_command(
    rounds: Annotated[int, typer.Option(min=1, max=5, help="Rounds of feedback and training.")] = 2,
    model: Annotated[
        str, typer.Option(help="smollm2 (shipped offline), tiny (random weights: fast, not coherent) or a folder.")
    ] = "smollm2",
    folder: Annotated[Path, typer.Option(help="Where the demo keeps everything (emptied first).")] = Path("demo"),
    prompts_per_round: Annotated[int, typer.Option(min=4, help="Prompts answered and judged per round.")] = 64,
) -> None:
    """The loop, offline on a CPU: SmolLM2 answers factual questions, a simulated annotator prefers answers
    of one short sentence, DPO learns from its thumbs and rankings; the task score of every round last."""
    from llm_feedback_loop.cli.loop import loop_settings, print_scores, run_loop
    from llm_feedback_loop.loop.context import Sampling
    from llm_feedback_loop.loop.report import after_round
    from llm_feedback_loop.models.loader import DEFAULT_SOURCE
    from llm_feedback_loop.models.promotion import points_dropped

    folder = folder.resolve()
    prepare_demo_folder(folder)
    if model == "tiny":
        from llm_feedback_loop.models.tiny import build_tiny_model

        source = str(build_tiny_model(folder / "tiny-model"))
    else:
        source = DEFAULT_SOURCE if model == "smollm2" else model
    # No base model for smollm2: the default base (SmolLM2, under its own name), whatever BASE_MODEL a .env
    # may set (the loop's child processes get BASE_MODEL="", which the environment's .env cannot override).
    settings = demo_settings(folder, None if model == "smollm2" else source)
    console.print(f"demo in {folder}: its own database, model {source}, {rounds} rounds of {prompts_per_round} prompts")
    loop = loop_settings(
        task="concise",
        train="dpo",
        annotator="simulated",
        name="demo",
        folder=folder,
        rounds=rounds,
        prompts_per_round=prompts_per_round,
        sampling=Sampling(n=4, max_tokens=64, temperature=0.8),
        strategy="best-vs-worst",
        train_options=[],  # `llmfl train`'s own defaults: its small-data recipe, as for `llmfl loop`
        eval_max_tokens=64,
    )
    use_settings(settings)  # the command's database is the demo's, not the environment's
    summary = run_loop(
        loop,
        settings,
        with_database,
        None,
        "the demo starts anew when run again (`llmfl loop --name demo` with the demo's DATABASE_URL would continue it)",
    )
    done = [r for r in summary if r["status"] == "completed"]
    start, end = after_round(done[0]), after_round(done[-1])
    drop = points_dropped(start.get("coherence", 0), end.get("coherence", 0))
    verdict = "kept" if drop <= loop.max_drop else f"FELL by {drop:.1f} points"
    typer.echo(
        f"coherence of the active version's answers: {start.get('coherence', 0):.3f} → {end.get('coherence', 0):.3f} "
        f"({verdict}); correct answers {start.get('correct', 0):.3f} → {end.get('correct', 0):.3f} (not the task score)"
    )
    print_scores(summary, loop.objective.name)
    if drop > loop.max_drop:
        raise typer.Exit(code=4)
