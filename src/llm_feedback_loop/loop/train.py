"""The loop's export and training stages: what a round collected becomes a JSONL export per method, and
each method trains in turn (each from the previous one's result) with `llmfl train` in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from llm_feedback_loop.loop import history
from llm_feedback_loop.loop.context import LoopError, LoopRun, NoTrainingData
from llm_feedback_loop.models.run_folder import last_checkpoint
from llm_feedback_loop.storage.tables import ModelVersion, TrainingRun
from llm_feedback_loop.training.runs import RunStatus

# A reward model learns from all the feedback so far (not only the round's), and keeps a share of its prompts
# back: its held-out pair accuracy is reported before the online method trusts it.
REWARD_HELD_OUT = 0.2
# A policy method trained with early stopping must rank its held-out pairs better than chance (a one-sided sign
# test at this level) for the round to evaluate its candidate.
HELD_OUT_CHANCE = 0.1


def export_round_data(run: LoopRun, number: int, method: str, since: datetime) -> dict[str, Any]:
    """The feedback collected since `since` (by this loop's simulated annotator, when it has one) as the
    round's export for `method` (of the dataset kind the method trains on; for a reward model, all feedback so
    far, with a held-out share); a NoTrainingData when it gives nothing to learn from."""
    from llm_feedback_loop.feedback.filters import FeedbackFilter
    from llm_feedback_loop.training.methods import makes_reward_model, method_of
    from llm_feedback_loop.training_data.export import export_to_jsonl
    from llm_feedback_loop.training_data.options import ExportOptions

    settings = run.settings
    reward = makes_reward_model(method)
    out = (settings.folder / f"round-{number}" / "data" / f"{method}.jsonl").resolve()
    held_out = REWARD_HELD_OUT if reward else early_stopping_share(method, settings.train_options)
    options = ExportOptions(
        method_of(method).kind,  # type: ignore[arg-type]
        format="conversational",
        strategy=settings.strategy,  # type: ignore[arg-type]
        test_size=held_out,
        max_pairs_per_prompt=min(run.app_settings.max_pairs_per_prompt, settings.pairs_per_prompt),
        exact_split=True,
        repetition_pairs=settings.repetition_pairs and method_of(method).kind == "dpo",
    )
    annotator = settings.annotator_name if settings.annotator == "simulated" else None
    where = FeedbackFilter(since=None if reward else since, annotator=annotator)
    manifest = run.database(lambda engine: export_to_jsonl(engine, options, where, out, None))
    rows = manifest["counts"]["rows"]
    if rows == 0:
        raise NoTrainingData(f"the round's feedback gives no {method} rows: every answer was judged alike")
    if method == "kto" and len([n for n in manifest["counts"].get("labels", {}).values() if n]) < 2:
        raise NoTrainingData("the round's feedback gives KTO rows of one label only: every answer judged alike")
    per_split = manifest["counts"]["prompts_per_split"]
    prompts = per_split.get("train", 0) + per_split.get("test", 0)
    if not reward and prompts < settings.signal_needed:
        raise NoTrainingData(
            f"too little signal: the feedback gives {method} rows for {prompts} prompts, fewer than "
            f"{settings.signal_needed} (--min-signal); it is kept, and the next round trains on it with its own"
        )
    tested = per_split.get("test", 0)
    shown = f" ({tested} held out{'' if reward else ' for early stopping'})" if tested else ""
    repeats = manifest["counts"]["rows_per_source"].get("repetition", 0)
    repeats_shown = f" ({repeats} of them a liked list over itself repeated)" if repeats else ""
    run.say(f"  exported {rows} {method} rows{repeats_shown} from {prompts} prompts{shown} to {out.parent}")
    return {"path": str(out), "rows": rows, "manifest_counts": manifest["counts"]}


def early_stopping_share(method: str, train_options: list[str]) -> float:
    """The share of the round's prompts held out for early stopping: the small-data recipe's for `method`,
    unless the loop's training settings (`--train-config FILE`) turn it off (`eval_steps: 0`, `evaluate: false`)."""
    from llm_feedback_loop.training.config import read_yaml
    from llm_feedback_loop.training.recipes import RECIPES

    recipe = RECIPES.get(method)
    if recipe is None or not recipe.held_out:
        return 0.0
    chosen = read_yaml(Path(train_options[1])) if train_options[:1] == ["--config"] else {}
    return 0.0 if chosen.get("eval_steps") == 0 or chosen.get("evaluate") is False else recipe.held_out


def held_out_losses(metrics: dict[str, Any]) -> str:
    """Early stopping's held-out loss at each evaluation, as the loop says it: `0.693 → 0.528 → 0.425`."""
    return " → ".join(f"{loss:.3f}" for _, loss in metrics.get("eval_losses", []))


def check_held_out(method: str, metrics: dict[str, Any], pairs: int) -> str:
    """What the candidate's held-out pairs say of it (early stopping's split: prompts it was not trained on); a
    NoTrainingData when they say it learnt nothing that carries to other prompts: no evaluation is spent on it,
    and the round's feedback is kept for the next round (a shuffled-label control ends here as a rule)."""
    from llm_feedback_loop.evaluation.intervals import sign_test

    accuracy = metrics.get("preference_accuracy")
    if "best_step" not in metrics or not isinstance(accuracy, float) or pairs == 0:
        return ""
    outcome = (
        "what the round's feedback taught did not carry to prompts it was not trained on, so the candidate is not "
        "evaluated and the feedback is kept for the next round"
    )
    if metrics["best_step"] == 0:  # the weights before training: nothing to evaluate
        losses = held_out_losses(metrics)
        raise NoTrainingData(f"{method} never lowered its {pairs} held-out pairs' loss ({losses}): {outcome}")
    right = round(accuracy * pairs)
    chance = sign_test(right, pairs)
    said = (
        f"{method} at step {metrics['best_step']} ranks {right} of {pairs} held-out pairs as the annotator did "
        f"(chance p = {chance:.2f})"
    )
    if 0.5**pairs > HELD_OUT_CHANCE:  # even all of them right could be luck
        return f"{said}: too few to tell from chance, not checked"
    if chance > HELD_OUT_CHANCE:
        raise NoTrainingData(f"{said}: no better than a model that learnt nothing (p > {HELD_OUT_CHANCE}); {outcome}")
    return said


def train_method(
    run: LoopRun, number: int, method: str, data: str, parent: ModelVersion, extra: tuple[str, ...] = ()
) -> tuple[TrainingRun, ModelVersion]:
    """Train `method` on `data` from `parent` (`extra`: more options, e.g. an online method's --reward);
    returns (the training run, with its metrics; the version it made). A rerun of a failed round reuses a completed run,
    and continues an interrupted one from its last checkpoint."""
    settings = run.settings
    output_dir = (settings.folder / f"round-{number}" / method).resolve()
    name = f"{settings.name}-r{number}-{method}"
    llmfl = [sys.executable, "-m", "llm_feedback_loop", "train"]
    command = [
        *llmfl, method, "--data", data, "--model", str(parent.id), "--output-dir", str(output_dir), "--name", name,
        *extra, *settings.train_options,
    ]  # fmt: skip
    existing = run.session(lambda s: history.run_for_output(s, str(output_dir)))
    if existing is not None and existing.status == RunStatus.COMPLETED and existing.output_version_id:
        return existing, run.version(existing.output_version_id)  # a rerun of a failed round
    if last_checkpoint(output_dir) is not None:  # an interrupted run: continue it
        command = [*llmfl, "--resume", "--output-dir", str(output_dir)]
    log_path = output_dir.parent / f"{method}-train.log"
    run.say(f"  training {method} from {parent.name} (log: {log_path})")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # A child process per training, not a call: the torch memory and threads of a round's training are
    # released when it ends, so the next round (and this process's evaluations) start from a clean slate.
    # Its environment gives it this process's settings (the entry point's, e.g. the demo's own database), less
    # the API keys: training calls no chat provider or service.
    environment = os.environ | run.app_settings.environment(secrets=False)
    with log_path.open("wb") as log:
        finished = subprocess.run(command, check=False, stdout=log, stderr=subprocess.STDOUT, env=environment)
    training = run.session(lambda s: history.run_for_output(s, str(output_dir)))
    if finished.returncode != 0 or training is None or training.output_version_id is None:
        reason = training.error if training is not None and training.error else f"exit code {finished.returncode}"
        raise LoopError(f"training {method} failed: {reason} (log: {log_path})")
    metrics = training.metrics or {}
    run.say(
        f"  trained {metrics.get('global_step')} steps in {metrics.get('train_runtime', 0):.0f} s, "
        f"loss {metrics.get('first_loss', 0):.3f} → {metrics.get('last_loss', 0):.3f}"
    )
    if "best_step" in metrics:  # early stopping on the held-out pairs
        kept = metrics["best_step"]
        run.say(f"  held-out loss by evaluation: {held_out_losses(metrics)}; kept the weights of step {kept}")
    return training, run.version(training.output_version_id)
