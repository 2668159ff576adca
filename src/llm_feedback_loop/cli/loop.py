"""`llmfl loop`: rounds of generate → feedback → export → train → evaluate → promote
(`llm_feedback_loop.loop.run.run_loop`); this module parses the options and prints the scores.

llmfl loop --rounds 2 --train dpo                     # simulated annotator scoring by the `concise` objective
llmfl loop --annotator people --service-url http://127.0.0.1:3000   # people judge on the /queue page
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llm_feedback_loop.cli.common import console, fail, load_settings, with_database
from llm_feedback_loop.cli.demo import demo_command

if TYPE_CHECKING:
    from llm_feedback_loop.loop.context import LoopSettings
    from llm_feedback_loop.settings import Settings
    from llm_feedback_loop.storage.database import RunOnDatabase

__all__ = ["demo_command", "loop_command"]  # cli/app.py registers both from here


class Control(StrEnum):
    """Control runs of the loop."""

    shuffled = "shuffled"


def say(message: str) -> None:
    console.print(message, highlight=False)


def score_line(round_: dict[str, Any]) -> str:
    """`round N: task_score … coherence … correct …` of the version active after the round, and what the
    round's candidate did."""
    from llm_feedback_loop.loop.report import after_round, interval

    if round_["status"] != "completed":
        return f"round {round_['round']}: {round_['status']} ({round_.get('error') or ''})"
    metrics = after_round(round_)
    shown = "  ".join(
        f"{name} {metrics[name]:.3f}"
        for name in ("task_score", "coherence", "correct", "sampled_task_score", "sampled_coherence")
        if name in metrics
    )
    if round_["round"] == 0:
        return f"round 0: {shown}  ({round_['base']}, the starting version)"
    candidate = (round_.get("metrics") or {}).get("candidate") or {}
    gain = f", gain {interval(candidate, 'gain')}" if "gain_low" in candidate else ""
    if "sampled_gain_low" in candidate:
        gain += f", sampled {interval(candidate, 'sampled_gain')}"
    if round_["promoted"]:
        return f"round {round_['round']}: {shown}  ({round_['candidate']}, promoted{gain})"
    if round_["candidate"] is None:
        return f"round {round_['round']}: {shown}  ({round_['base']} kept; {'; '.join(round_['decision'] or [])})"
    return (
        f"round {round_['round']}: {shown}  ({round_['base']} kept; candidate {round_['candidate']} scored "
        f"{candidate.get('task_score', 0):.3f}{gain}, not promoted)"
    )


def run_loop(
    settings: LoopSettings,
    app_settings: Settings,
    database: RunOnDatabase,
    service_url: str | None,
    resume_hint: str = "run the same command again to continue from the interrupted round",
) -> list[dict[str, Any]]:
    """The loop's rounds (`loop.run.run_loop`), its errors as messages a user can act on."""
    import httpx

    from llm_feedback_loop.auth.accounts import AccountError
    from llm_feedback_loop.loop import run
    from llm_feedback_loop.loop.collect import ServiceError
    from llm_feedback_loop.loop.context import LoopError
    from llm_feedback_loop.loop.service import ServiceStartError
    from llm_feedback_loop.models.loader import ModelLoadError
    from llm_feedback_loop.training.config import ConfigError

    if service_url is not None and not app_settings.llmfl_api_key:
        raise fail(
            "--service-url needs an API key of that service in LLMFL_API_KEY (on its machine: "
            "llmfl keys create --role admin --name loop)"
        )
    try:
        return run.run_loop(settings, app_settings, database, say, service_url)
    except AccountError as error:
        raise fail(str(error)) from None
    except (LoopError, ServiceError, ServiceStartError, ModelLoadError, ConfigError, httpx.HTTPError) as error:
        raise fail(f"the loop stopped: {error}") from None
    except KeyboardInterrupt:
        raise fail(f"interrupted; {resume_hint}") from None


def check_train_config(path: Path, methods: list[str]) -> None:
    """Refuse a --train-config that cannot be read or holds settings `llmfl train` refuses for one of the
    loop's methods, before round 0 (else the loop would find out in round 1, after collecting its feedback)."""
    from llm_feedback_loop.loop.context import ONLINE
    from llm_feedback_loop.training.config import ConfigError, build_config, read_yaml

    try:
        chosen = read_yaml(path)
        for method in methods:  # each round's training is given its export (--data) by the loop...
            given = {"method": method, "data": "round-export.jsonl"}
            if method in ONLINE and not chosen.get("reward"):  # ...and an online method the round's reward model
                given["reward"] = ["the-rounds-reward-model"]
            build_config(chosen, given)
    except ConfigError as error:
        raise fail(f"--train-config: {error}") from None


def loop_settings(**values: Any) -> LoopSettings:
    """The loop's settings from the options (`task`: the objective's spec; `train`: methods, comma-separated)."""
    from llm_feedback_loop.loop.context import METHODS, ONLINE, LoopSettings
    from llm_feedback_loop.objectives.base import ObjectiveError, load_objective, load_scorer
    from llm_feedback_loop.training_data.options import PAIR_STRATEGIES

    if values["strategy"] not in PAIR_STRATEGIES:
        raise fail(f"--strategy takes {', '.join(PAIR_STRATEGIES)}, not {values['strategy']!r}")
    methods = [m.strip() for m in values.pop("train").split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise fail(f"--train takes {', '.join(METHODS)} (comma-separated, in order), not {unknown or 'nothing'}")
    if methods[-1] == "reward":
        raise fail("--train: a reward model is not a chat model; follow it by the method it rewards, e.g. reward,grpo")
    for position, method in enumerate(methods):
        if method in ONLINE and "reward" not in methods[:position] and "--reward" not in values["train_options"]:
            raise fail(f"--train: {method} needs a reward: train one before it (--train reward,{method})")
    annotator = values.pop("annotator")
    try:
        objective = load_objective(values.pop("task"))
        scorer = None if annotator in ("simulated", "people") else load_scorer(annotator)
    except ObjectiveError as error:
        raise fail(str(error)) from None
    return LoopSettings(
        objective=objective,
        methods=methods,
        annotator="people" if annotator == "people" else "simulated",
        scorer=scorer,
        **values,
    )


def print_scores(rounds: list[dict[str, Any]], objective_name: str) -> None:
    typer.echo(f"task score ({objective_name}) after each round:")
    for round_ in rounds:
        typer.echo(score_line(round_))


def loop_command(
    rounds: Annotated[
        int, typer.Option(min=0, max=100, help="Rounds of feedback and training (after round 0, the baseline).")
    ] = 2,
    task: Annotated[
        str, typer.Option(help="The task: concise, specific, bullets, plain (built in), MODULE:NAME or FILE.py:NAME.")
    ] = "concise",
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
    train: Annotated[
        str,
        typer.Option(help="Methods, in order: dpo, sft, kto, or e.g. sft,dpo; reward,grpo (or rloo) for online RL."),
    ] = "dpo",
    train_config: Annotated[
        Path | None,
        typer.Option(help="YAML settings for every `llmfl train` (default: its small-data recipe, for DPO)."),
    ] = None,
    strategy: Annotated[
        str, typer.Option(help="How rankings become DPO pairs (default: the clearest first).")
    ] = "best-vs-worst",
    pairs_per_prompt: Annotated[
        int, typer.Option(min=1, max=64, help="Most DPO pairs one prompt gives a round (its clearest ones).")
    ] = 2,
    prompts_per_round: Annotated[
        int,
        typer.Option(
            min=1,
            max=1000,
            help="With --answers, the round's budget: prompts × answers answers. A simulated annotator's round "
            "spends it on 2 answers to many prompts, more to those whose answers it judged alike; people get "
            "this many prompts.",
        ),
    ] = 64,
    answers: Annotated[int, typer.Option(min=2, max=4, help="Most answers per prompt.")] = 4,
    min_signal: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Train only when at least this many prompts' answers were judged differently (default: a "
            "quarter of --prompts-per-round, at most 16). A simulated annotator's round collects once more "
            "below half of --prompts-per-round (at most 32) or below this. Too little: the feedback waits for "
            "the next round.",
        ),
    ] = None,
    max_tokens: Annotated[
        int, typer.Option(min=1, max=4096, help="Tokens per answer (generation and evaluation).")
    ] = 64,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0, help="Sampling temperature.")] = 0.8,
    eval_samples: Annotated[
        int,
        typer.Option(
            min=0,
            max=16,
            help="Sampled answers per held-out prompt beside the greedy one; their gain must show too "
            "(0: greedy only).",
        ),
    ] = 2,
    repetition_pairs: Annotated[
        bool,
        typer.Option(
            help="DPO: each training prompt whose liked answer is a list also gets that list preferred to itself "
            "repeated (its first item in place of the rest), against greedy answers that loop."
        ),
    ] = True,
    seed: Annotated[int | None, typer.Option(min=0, max=2**31 - 1, help="Seed the answers (reproducible).")] = None,
    min_win_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Promote only at this win rate against the base...")
    ] = 0.55,
    max_drop: Annotated[
        float, typer.Option(min=0.0, max=100.0, help="...and if no metric falls more than this many points.")
    ] = 5.0,
    min_gain: Annotated[
        float,
        typer.Option(
            min=-100.0,
            max=100.0,
            help="...and if the task score's gain has its 95% interval above this many points (-100: no check).",
        ),
    ] = 0.0,
    wait_minutes: Annotated[
        float, typer.Option(min=0.1, max=10080.0, help="--annotator people: longest wait per round.")
    ] = 60.0,
    control: Annotated[
        Control | None,
        typer.Option(
            help="shuffled: a control run; the simulated annotator's judgements are shuffled among each prompt's "
            "answers (as many pairs, no signal), to show that a gain comes from the feedback."
        ),
    ] = None,
    folder: Annotated[Path | None, typer.Option(help="Exports, runs, answers, report (default: loops/NAME).")] = None,
) -> None:
    """Rounds of the whole cycle: answers from the active version, feedback, export, training, evaluation
    on the task's held-out prompts, promotion if better. Prints the task score after each round.

    Long because every option of the loop is declared here, as Typer wants them; the body is a few checks."""
    from llm_feedback_loop.loop.context import Sampling

    if annotator == "people" and service_url is None:
        raise fail("--annotator people needs --service-url: the service your annotators use")
    if control is not None and annotator == "people":
        raise fail("--control shuffled shuffles a simulated annotator's judgements; people's are never altered")
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
        pairs_per_prompt=pairs_per_prompt,
        min_signal=min_signal,
        train_options=["--config", str(train_config.resolve())] if train_config else [],
        people_timeout_s=wait_minutes * 60,
        min_win_rate=min_win_rate,
        max_drop=max_drop,
        min_gain=min_gain,
        eval_max_tokens=max_tokens,
        eval_samples=eval_samples,
        repetition_pairs=repetition_pairs,
        control=control.value if control else None,
    )
    if train_config is not None:
        check_train_config(train_config, settings.methods)
    summary = run_loop(settings, load_settings(), with_database, service_url)
    print_scores(summary, settings.objective.name)
