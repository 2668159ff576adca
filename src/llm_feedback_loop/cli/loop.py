"""`llmfl loop` (rounds of generate → feedback → export → train → evaluate → promote) and `llmfl demo`
(the loop on a style task with a simulated annotator, offline on a CPU, in a folder of its own).

llmfl loop --rounds 2 --train dpo                     # simulated annotator scoring by the `concise` task
llmfl loop --annotator people --service-url http://127.0.0.1:3000   # people judge on the /queue page
llmfl demo                                            # SmolLM2, two rounds, about 11 minutes on 2 cores
"""

from __future__ import annotations

import os
import shutil
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llm_feedback_loop.cli.common import console, fail, load_settings, with_database

if TYPE_CHECKING:
    from llm_feedback_loop.loop.rounds import LoopSettings

DEMO_MARKER = ".llmfl-demo"
# The demo's training: LoRA on the top layers of SmolLM2 (30 layers), measured to move a style preference in
# one round from ~80 pairs at ~8-11 s per step of 8 pairs on a CPU. At most 20 steps a round: a later round
# has more pairs (its model complies more often, so more prompts get answers of both kinds), and 38 steps on
# 145 pairs drove a candidate to degenerate answers (which the coherence check refused to promote).
DEMO_TRAIN_CONFIG = """\
lora: true
lora_r: 16
lora_alpha: 32
lora_target_modules: '.*layers\\.(1[8-9]|2[0-9])\\.(self_attn|mlp)\\.(q|k|v|o|gate|up|down)_proj'
learning_rate: 2.0e-4
beta: 0.1
epochs: 2
max_steps: 20
batch_size: 8
max_length: 256
logging_steps: 1
save_steps: 10000
evaluate: false
"""
TINY_TRAIN_CONFIG = """\
learning_rate: 5.0e-4
beta: 0.1
epochs: 2
batch_size: 8
max_length: 256
logging_steps: 1
save_steps: 10000
evaluate: false
"""


def ensure_active_version() -> Any:
    """The active version (the base model registered on first use, as the service does)."""
    from llm_feedback_loop.models.loader import ModelLoadError
    from llm_feedback_loop.serving.slot import choose_model

    settings = load_settings()
    try:
        return with_database(lambda engine: choose_model(engine, None, settings.base_model))
    except ModelLoadError as error:
        raise fail(str(error)) from None


def score_line(round_: dict[str, Any]) -> str:
    """`round N: task_score … coherence … correct …` of the version active after the round, and what the
    round's candidate did."""
    from llm_feedback_loop.loop.report import after_round

    if round_["status"] != "completed":
        return f"round {round_['round']}: {round_['status']} ({round_.get('error') or ''})"
    metrics = after_round(round_)
    shown = "  ".join(
        f"{name} {metrics[name]:.3f}" for name in ("task_score", "coherence", "correct") if name in metrics
    )
    if round_["round"] == 0:
        return f"round 0: {shown}  ({round_['base']}, the starting version)"
    if round_["promoted"]:
        return f"round {round_['round']}: {shown}  ({round_['candidate']}, promoted)"
    if round_["candidate"] is None:
        return f"round {round_['round']}: {shown}  ({round_['base']} kept; {'; '.join(round_['decision'] or [])})"
    candidate = (round_.get("metrics") or {}).get("candidate") or {}
    return (
        f"round {round_['round']}: {shown}  ({round_['base']} kept; candidate {round_['candidate']} scored "
        f"{candidate.get('task_score', 0):.3f}, not promoted)"
    )


def run_loop(
    settings: LoopSettings,
    service_url: str | None,
    resume_hint: str = "run the same command again to continue from the interrupted round",
) -> list[dict[str, Any]]:
    """Run the loop's rounds against the service (started here unless a URL is given); write the report."""
    import httpx

    from llm_feedback_loop.auth.accounts import revoke_key, service_key
    from llm_feedback_loop.cli.accounts import in_session
    from llm_feedback_loop.loop.collect import ServiceError
    from llm_feedback_loop.loop.rounds import Loop, LoopError
    from llm_feedback_loop.loop.service import ServiceStartError, own_service
    from llm_feedback_loop.models.loader import ModelLoadError

    ensure_active_version()
    settings.folder.mkdir(parents=True, exist_ok=True)
    app_settings = load_settings()
    with_timeout = app_settings.chat_timeout_s + 30

    def say(message: str) -> None:
        console.print(message, highlight=False)

    if service_url is None:  # the loop's own service: an admin key it gives itself, revoked at the end
        own_key, key = in_session(lambda session: service_key(session, f"llmfl loop {settings.name}"))
        key_prefix: str | None = own_key.prefix
    elif app_settings.llmfl_api_key:
        key_prefix, key = None, app_settings.llmfl_api_key
    else:
        raise fail(
            "--service-url needs an API key of that service in LLMFL_API_KEY (on its machine: "
            "llmfl keys create --role admin --name loop)"
        )
    try:
        service = own_service(settings.folder) if service_url is None else nullcontext(service_url.rstrip("/"))
        headers = {"Authorization": f"Bearer {key}"}
        with service as url, httpx.Client(base_url=url, timeout=with_timeout, headers=headers) as client:
            loop = Loop(settings, client, with_database, say)
            try:
                return loop.run()
            finally:
                say(f"report: {loop.write_report()} (and report.json)")
    except (LoopError, ServiceError, ServiceStartError, ModelLoadError, httpx.HTTPError) as error:
        raise fail(f"the loop stopped: {error}") from None
    except KeyboardInterrupt:
        raise fail(f"interrupted; {resume_hint}") from None
    finally:
        if key_prefix is not None:
            in_session(lambda session: revoke_key(session, key_prefix))


def loop_settings(**values: Any) -> LoopSettings:
    from llm_feedback_loop.loop.rounds import METHODS, LoopSettings
    from llm_feedback_loop.objectives.base import TaskError, load_scorer, load_task
    from llm_feedback_loop.training_data.options import PAIR_STRATEGIES

    if values["strategy"] not in PAIR_STRATEGIES:
        raise fail(f"--strategy takes {', '.join(PAIR_STRATEGIES)}, not {values['strategy']!r}")
    methods = [m.strip() for m in values.pop("train").split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise fail(f"--train takes {', '.join(METHODS)} (comma-separated, in order), not {unknown or 'nothing'}")
    annotator = values.pop("annotator")
    try:
        task = load_task(values.pop("task"))
        scorer = None if annotator in ("simulated", "people") else load_scorer(annotator)
    except TaskError as error:
        raise fail(str(error)) from None
    return LoopSettings(
        task=task,
        methods=methods,
        annotator="people" if annotator == "people" else "simulated",
        scorer=scorer,
        **values,
    )


def print_scores(rounds: list[dict[str, Any]], task_name: str) -> None:
    typer.echo(f"task score ({task_name}) after each round:")
    for round_ in rounds:
        typer.echo(score_line(round_))


def loop_command(
    rounds: Annotated[int, typer.Option(help="Rounds of feedback and training (after round 0, the baseline).")] = 2,
    task: Annotated[str, typer.Option(help="The task: concise (built in), MODULE:NAME or FILE.py:NAME.")] = "concise",
    name: Annotated[str, typer.Option(help="The loop's name; running it again continues its rounds.")] = "loop",
    annotator: Annotated[
        str,
        typer.Option(
            help="simulated (scores by the task), people (the /queue page; needs --service-url), "
            "or MODULE:FUNCTION scoring (prompt, answer)."
        ),
    ] = "simulated",
    service_url: Annotated[
        str | None, typer.Option(help="A running service (same database). Default: start one for the loop.")
    ] = None,
    train: Annotated[str, typer.Option(help="Methods, in order: dpo, sft, kto, or e.g. sft,dpo.")] = "dpo",
    train_config: Annotated[Path | None, typer.Option(help="YAML settings for every `llmfl train`.")] = None,
    strategy: Annotated[str, typer.Option(help="How rankings become DPO pairs.")] = "all-pairs",
    prompts_per_round: Annotated[int, typer.Option(min=1, help="Prompts answered and judged per round.")] = 64,
    answers: Annotated[int, typer.Option(min=2, max=4, help="Answers per prompt.")] = 4,
    max_tokens: Annotated[int, typer.Option(min=1, help="Tokens per answer (generation and evaluation).")] = 64,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0, help="Sampling temperature.")] = 0.8,
    seed: Annotated[
        int | None, typer.Option(help="Seed the answers (reproducible, but generated one at a time: slower).")
    ] = None,
    min_win_rate: Annotated[float, typer.Option(help="Promote only at this win rate against the base...")] = 0.55,
    max_drop: Annotated[float, typer.Option(help="...and if no metric falls more than this many points.")] = 5.0,
    wait_minutes: Annotated[float, typer.Option(help="--annotator people: longest wait per round.")] = 60.0,
    folder: Annotated[Path | None, typer.Option(help="Exports, runs, answers, report (default: loops/NAME).")] = None,
) -> None:
    """Rounds of the whole cycle: answers from the active version, feedback, export, training, evaluation
    on the task's held-out prompts, promotion if better. Prints the task score after each round."""
    from llm_feedback_loop.loop.collect import Sampling

    if annotator == "people" and service_url is None:
        raise fail("--annotator people needs --service-url: the service your annotators use")
    if train_config is not None and not train_config.is_file():
        raise fail(f"--train-config {train_config} does not exist")
    settings = loop_settings(
        task=task,
        train=train,
        annotator=annotator,
        name=name,
        folder=(folder or Path("loops") / name).resolve(),
        rounds=rounds,
        prompts_per_round=prompts_per_round,
        sampling=Sampling(n=answers, max_tokens=max_tokens, temperature=temperature, seed=seed),
        strategy=strategy,
        train_options=["--config", str(train_config.resolve())] if train_config else [],
        people_timeout_s=wait_minutes * 60,
        min_win_rate=min_win_rate,
        max_drop=max_drop,
        eval_max_tokens=max_tokens,
    )
    summary = run_loop(settings, service_url)
    print_scores(summary, settings.task.name)


def prepare_demo_folder(folder: Path) -> None:
    """A fresh demo folder: one made by an earlier demo is emptied; any other non-empty folder is refused."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / DEMO_MARKER).is_file():
            raise fail(f"{folder} exists and was not made by `llmfl demo`; choose another --folder")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text("made by llmfl demo; emptied when the demo runs again\n", encoding="utf-8")


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
    from llm_feedback_loop.loop.collect import Sampling
    from llm_feedback_loop.models.loader import DEFAULT_SOURCE
    from llm_feedback_loop.settings import get_settings

    folder = folder.resolve()
    prepare_demo_folder(folder)
    if model == "tiny":
        from llm_feedback_loop.models.tiny import build_tiny_model

        source = str(build_tiny_model(folder / "tiny-model"))
    else:
        source = DEFAULT_SOURCE if model == "smollm2" else model
    os.environ["DATABASE_URL"] = f"sqlite+aiosqlite:///{folder / 'demo.db'}"
    # Empty: the default base (SmolLM2, under its own name), whatever BASE_MODEL a .env may set.
    os.environ["BASE_MODEL"] = "" if model == "smollm2" else source
    os.environ["CHECKPOINT_DIR"] = str(folder / "checkpoints")
    get_settings.cache_clear()
    config = folder / "train.yaml"
    config.write_text(TINY_TRAIN_CONFIG if model == "tiny" else DEMO_TRAIN_CONFIG, encoding="utf-8")
    console.print(f"demo in {folder}: its own database, model {source}, {rounds} rounds of {prompts_per_round} prompts")
    settings = loop_settings(
        task="concise",
        train="dpo",
        annotator="simulated",
        name="demo",
        folder=folder,
        rounds=rounds,
        prompts_per_round=prompts_per_round,
        sampling=Sampling(n=4, max_tokens=64, temperature=0.8),
        strategy="all-pairs",
        train_options=["--config", str(config)],
        eval_max_tokens=64,
    )
    summary = run_loop(
        settings,
        None,
        "the demo starts anew when run again (`llmfl loop --name demo` with the demo's DATABASE_URL would continue it)",
    )
    done = [r for r in summary if r["status"] == "completed"]
    from llm_feedback_loop.loop.report import after_round

    start, end = after_round(done[0]), after_round(done[-1])
    drop = 100 * (start.get("coherence", 0) - end.get("coherence", 0))
    verdict = "kept" if drop <= settings.max_drop else f"FELL by {drop:.1f} points"
    typer.echo(
        f"coherence of the active version's answers: {start.get('coherence', 0):.3f} → {end.get('coherence', 0):.3f} "
        f"({verdict}); correct answers {start.get('correct', 0):.3f} → {end.get('correct', 0):.3f} (not trained for)"
    )
    print_scores(summary, settings.task.name)
    if drop > settings.max_drop:
        raise typer.Exit(code=4)
