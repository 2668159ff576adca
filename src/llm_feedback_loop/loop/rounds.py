"""`llmfl loop`: rounds of the whole cycle against a running service.

Round 0 evaluates the active version on the objective's held-out prompts. Each later round:
generate answers with the active version → feedback (simulated annotator or people, through the service)
→ export what this round collected → train (each configured method in turn, each from the previous one's
result) → evaluate the candidate against the round's base → promote it if the rule holds.
Every round is a `loop_rounds` row; the report (JSON and HTML) is rewritten after each round.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.loop import history
from llm_feedback_loop.loop.collect import collect_feedback
from llm_feedback_loop.loop.context import ONLINE, LoopError, LoopRun, NoTrainingData
from llm_feedback_loop.loop.evaluate import answers_path, evaluate_version, metrics_of
from llm_feedback_loop.loop.train import check_held_out, export_round_data, train_method
from llm_feedback_loop.storage.tables import LoopRound, ModelVersion


def promote(run: LoopRun, candidate: ModelVersion, base: ModelVersion) -> tuple[bool, list[str]]:
    """Activate the candidate if the promotion rule holds over its and its base's evaluations. A control run's
    candidate, trained on shuffled judgements, is never made active (the service would answer with it): the
    reasons say when the rule would have promoted it."""
    from llm_feedback_loop.models.promotion import decide
    from llm_feedback_loop.models.registry import activate_version

    settings = run.settings
    candidate, base = run.version(candidate.id), run.version(base.id)  # with their new evaluations
    also = {name: 100.0 for name in settings.objective.measures}
    decision = decide(candidate.extra, base.extra, settings.min_win_rate, settings.max_drop, also, settings.min_gain)
    if settings.control is not None:
        if decision.promote:
            kept = f"the rule would promote it, but a {settings.control} control run's candidate is never made active"
            return False, [kept]
        return False, decision.reasons
    if decision.promote:
        run.session(lambda s: activate_version(s, candidate.id))
    return decision.promote, decision.reasons


def collected(feedback: dict[str, Any] | None) -> bool:
    """Whether a round's feedback is in: more than the time its collection began (set first, before any)."""
    return bool(feedback and feedback.get("since") and len(feedback) > 1)


def feedback_of(run: LoopRun, number: int, row: LoopRound, base: ModelVersion) -> datetime:
    """When the round's feedback began: collected now, or by an earlier attempt at the same round."""
    feedback = row.feedback or {}
    if collected(feedback):  # a rerun: this round's feedback is in already
        run.say(f"  using the feedback collected by the earlier attempt at round {number}")
        return datetime.fromisoformat(feedback["since"])
    since, feedback = collect_feedback(run, number, row, base)
    run.session(lambda s: history.update_round(s, row.id, feedback=feedback))
    return since


def carried_since(run: LoopRun, number: int, since: datetime) -> datetime:
    """Where the round's export starts: its own feedback, and that of the rounds just before it that trained
    nothing (too little signal, or every answer judged alike) under the same base: their feedback is kept
    for this one."""
    rows = {r.round: r for r in run.session(lambda s: history.rounds_of(s, run.settings.name))}
    current = rows.get(number)
    earlier = number - 1
    while earlier > 0 and (row := rows.get(earlier)) is not None and row.candidate_version_id is None:
        if current is None or row.base_version_id != current.base_version_id or row.status != "completed":
            break
        began = (row.feedback or {}).get("since")
        if began:
            since = min(since, datetime.fromisoformat(began))
        earlier -= 1
    return since


def train_reward_model(run: LoopRun, number: int, data: str, base: ModelVersion) -> tuple[int, ModelVersion]:
    """The round's reward model, trained afresh from the round's base on all the feedback so far (a reward model
    cannot be the parent of another: training starts from chat models), its held-out pair accuracy said
    before the online method trusts it."""
    training, reward_model = train_method(run, number, "reward", data, base)
    accuracy = (training.metrics or {}).get("preference_accuracy")
    shown = f"{accuracy:.3f}" if isinstance(accuracy, float) else "n/a (no held-out pairs)"
    run.say(f"  reward model {reward_model.name}: held-out pair accuracy {shown}")
    return training.id, reward_model


def train_candidate(run: LoopRun, number: int, row: LoopRound, base: ModelVersion, since: datetime) -> ModelVersion:
    """Export and train each method in turn, each from the previous one's result; returns the last version.
    A reward model is not a step of the policy: it is trained from the round's base on all feedback so far,
    reported, and given to the online method that follows it as its --reward."""
    from llm_feedback_loop.training.methods import makes_reward_model
    from llm_feedback_loop.training_data.files import jsonl_split_files

    data, run_ids, parent, reward_model = dict(row.data or {}), [], base, None
    for method in run.settings.methods:
        if method not in data or not jsonl_split_files(Path(data[method]["path"]))["train"].is_file():
            data[method] = export_round_data(run, number, method, since)
            run.session(lambda s: history.update_round(s, row.id, data=data))
        metrics: dict[str, Any] = {}  # a policy method's, for the held-out check
        if makes_reward_model(method):
            run_id, reward_model = train_reward_model(run, number, data[method]["path"], base)
        else:
            extra = ("--reward", str(reward_model.id)) if method in ONLINE and reward_model is not None else ()
            training, parent = train_method(run, number, method, data[method]["path"], parent, extra)
            run_id, metrics = training.id, training.metrics or {}
        run_ids.append(run_id)
        run.session(lambda s: history.update_round(s, row.id, run_ids=run_ids))
        pairs = data[method]["manifest_counts"].get("rows_per_split", {}).get("test", 0)
        if said := check_held_out(method, metrics, pairs):  # early stopping's held-out pairs, where it had them
            run.say(f"  {said}")
    return parent


def run_round(run: LoopRun, number: int) -> None:
    """One round (round 0: the active version's baseline), recorded in its `loop_rounds` row."""
    settings = run.settings
    base = run.active()
    row = run.session(lambda s: history.start_round(s, settings.name, number, settings.objective.name, base.id))
    try:
        base_metrics = metrics_of(run, base)
        if number == 0:
            update = {"metrics": {"base": base_metrics}}
            run.session(lambda s: history.update_round(s, row.id, status="completed", **update))
            return
        since = carried_since(run, number, feedback_of(run, number, row, base))
        candidate = train_candidate(run, number, row, base, since)
        candidate_metrics = evaluate_version(run, candidate, base)
        promoted, reasons = promote(run, candidate, base)
        values = {
            "status": "completed",
            "candidate_version_id": candidate.id,
            "promoted": promoted,
            "decision": reasons,
            "metrics": {"base": base_metrics, "candidate": candidate_metrics},
        }
        run.session(lambda s: history.update_round(s, row.id, **values))
        verdict = "promoted" if promoted else "not promoted (" + "; ".join(reasons) + ")"
        run.say(f"  {candidate.name}: {verdict}")
    except NoTrainingData as error:
        update = {"metrics": {"base": base_metrics}, "decision": [str(error)]}
        run.session(lambda s: history.update_round(s, row.id, status="completed", **update))
        run.say(f"  nothing trained: {error}")
    except BaseException as error:
        message = str(error) if isinstance(error, LoopError) else f"{type(error).__name__}: {error}"
        run.session(lambda s: history.update_round(s, row.id, status="failed", error=message))
        raise


def run_rounds(run: LoopRun) -> list[dict[str, Any]]:
    """Rounds 0..N (those a previous run of the same loop completed are kept); returns the rounds."""
    rows = run.session(lambda s: history.rounds_of(s, run.settings.name))
    check_control(run.settings.name, run.settings.control, rows)
    done = {r.round for r in rows if r.status == "completed"}
    for number in range(run.settings.rounds + 1):
        if number in done:
            continue
        started, cpu = time.monotonic(), cpu_seconds()
        run.say(f"round {number}" + (" (the starting version)" if number == 0 else ""))
        run_round(run, number)
        cost = {"wall_s": round(time.monotonic() - started, 1), "cpu_minutes": round((cpu_seconds() - cpu) / 60, 2)}
        run.session(lambda s, n=number, c=cost: history.record_cost(s, run.settings.name, n, c))
        run.say(f"  round {number} took {cost['wall_s']:.0f} s, {cost['cpu_minutes']:.1f} CPU-minutes")
    return summary(run)


def check_control(name: str, control: str | None, rows: list[LoopRound]) -> None:
    """Refuse to continue a loop's rounds as a control run when they were real, or the reverse: shuffled
    judgements would join real ones in one loop's history (and its carried feedback)."""
    kinds = {r.feedback.get("control") for r in rows if r.round > 0 and collected(r.feedback)}
    if not kinds or kinds == {control}:
        return
    if control is None:
        raise LoopError(
            f"loop {name!r} is a control run (--control shuffled): continue it as one, or give this run another --name"
        )
    raise LoopError(f"loop {name!r} has rounds of real feedback: give the control run a --name of its own")


def cpu_seconds() -> float:
    """CPU time of the loop on this machine so far: this process, its finished children (the trainings) and
    its live ones (the service it started; one given by URL is not counted)."""
    import psutil

    me = psutil.Process()
    times = me.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in me.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except psutil.Error:  # it ended meanwhile: counted with the finished ones once waited for
            continue
        total += child_times.user + child_times.system
    return total


def summary(run: LoopRun) -> list[dict[str, Any]]:
    """Every round of the loop so far, as the report holds them."""

    async def load(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await history.rounds_of(session, run.settings.name)
        ids = {i for r in rows for i in (r.base_version_id, r.candidate_version_id) if i}
        names = {i: (await session.get(ModelVersion, i)).name for i in ids}  # type: ignore[union-attr]
        return [history.describe_round(r, names) for r in rows]

    return run.session(load)


def write_loop_report(run: LoopRun) -> Path:
    """report.json and report.html in the loop's folder; returns the HTML path."""
    from llm_feedback_loop.loop.report import write_report

    rounds = summary(run)
    objective = run.settings.objective
    shown = [r["base"] for r in rounds if r["round"] == 0] + [r["candidate"] for r in rounds if r["promoted"]]

    def answers(name: str | None) -> tuple[str, list[str]]:
        from llm_feedback_loop.models.registry import find_version

        version = run.session(lambda s: find_version(s, name)) if name else None
        path = answers_path(run, version) if version is not None else None
        if name is None or path is None or not path.is_file():
            return "", []
        return name, json.loads(path.read_text(encoding="utf-8"))

    described = {
        "name": objective.name,
        "description": objective.description,
        "eval_prompts": len(objective.eval_prompts),
        "prompts": objective.eval_prompts,
    }
    first, last = (shown[0], shown[-1]) if shown else (None, None)
    return write_report(run.settings.folder, run.settings.name, described, rounds, answers(first), answers(last))
