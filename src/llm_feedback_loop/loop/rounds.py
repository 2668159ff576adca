"""`llmfl loop`: rounds of the whole cycle against a running service.

Round 0 evaluates the active version on the task's held-out prompts. Each later round:
generate answers with the active version → feedback (simulated annotator or people, through the service)
→ export what this round collected → train (each configured method in turn, each from the previous one's
result) → evaluate the candidate against the round's base → promote it if the rule holds.
Every round is a `loop_rounds` row; the report (JSON and HTML) is rewritten after each round.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from llm_feedback_loop.evaluation.judges import JudgeError
from llm_feedback_loop.loop import collect, records
from llm_feedback_loop.loop.evaluate import answer_prompts, pairwise_win_rate, task_metrics
from llm_feedback_loop.models.loader import ModelLoadError
from llm_feedback_loop.objectives.base import LoopTask, Scorer
from llm_feedback_loop.storage.tables import LoopRound, ModelVersion
from llm_feedback_loop.training.layout import last_checkpoint

METHODS = ("sft", "dpo", "kto")  # each trains on the export of the same name


class LoopError(RuntimeError):
    """A round could not go on; the message says why (it is recorded in the round's row)."""


class NoTrainingData(LoopError):
    """The round's feedback gives nothing to train on (every answer judged alike): the round ends without
    a candidate and the loop goes on with the next."""


@dataclass
class LoopSettings:
    name: str
    task: LoopTask
    folder: Path
    rounds: int = 2
    prompts_per_round: int = 64
    sampling: collect.Sampling = field(default_factory=collect.Sampling)
    methods: list[str] = field(default_factory=lambda: ["dpo"])
    strategy: str = "all-pairs"
    train_options: list[str] = field(default_factory=list)  # more `llmfl train` options, e.g. --config FILE
    annotator: str = "simulated"  # or "people"
    scorer: Scorer | None = None  # the simulated annotator's score (default: the task's preference)
    people_timeout_s: float = 3600.0
    min_win_rate: float = 0.55
    max_drop: float = 5.0
    eval_max_tokens: int = 64

    @property
    def annotator_name(self) -> str:
        return f"simulated:{self.name}"

    @property
    def data_path(self) -> str:
        """How the loop's evaluations are named among a version's evaluations."""
        return f"task:{self.task.name}"


Database = Callable[[Callable[[AsyncEngine], Any]], Any]  # runs an async function on the database


class Loop:
    def __init__(self, settings: LoopSettings, client: httpx.Client, database: Database, say: Callable[[str], None]):
        self.settings = settings
        self.client = client
        self.database = database
        self.say = say

    # --- the database ------------------------------------------------------------------------------------

    def session(self, work: Callable[[AsyncSession], Any]) -> Any:
        async def run(engine: AsyncEngine) -> Any:
            async with AsyncSession(engine, expire_on_commit=False) as session:
                return await work(session)

        return self.database(run)

    def active(self) -> ModelVersion:
        from llm_feedback_loop.models.registry import active_version

        version = self.session(active_version)
        if version is None:
            raise LoopError("no active model version: the service registers one when it first answers a chat")
        return version

    def version(self, version_id: int) -> ModelVersion:
        return self.session(lambda s: s.get(ModelVersion, version_id))

    # --- evaluation ---------------------------------------------------------------------------------------

    def answers_of(self, version: ModelVersion) -> list[str]:
        """The version's greedy answers to the held-out prompts (computed once, kept in the loop's folder)."""
        path = self.answers_path(version.name)
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
        self.say(f"  answering {len(self.settings.task.eval_prompts)} held-out prompts with {version.name}")
        try:
            answers = answer_prompts(version.source, self.settings.task.eval_prompts, self.settings.eval_max_tokens)
        except ModelLoadError as error:
            raise LoopError(f"cannot evaluate {version.name}: {error}") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(answers, ensure_ascii=False, indent=1), encoding="utf-8")
        partial.replace(path)  # never a half-written file
        return answers

    def answers_path(self, name: str) -> Path:
        """Where a version's held-out answers are kept: by its name and the answer length (ids are reused
        when a database is made anew)."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return self.settings.folder / "answers" / f"{safe}-{self.settings.eval_max_tokens}tok.json"

    def evaluate(self, version: ModelVersion, against: ModelVersion | None) -> dict[str, Any]:
        """Task metrics of a version (and its win rate against `against`), kept with the version."""
        task = self.settings.task
        answers = self.answers_of(version)
        try:
            metrics: dict[str, Any] = task_metrics(task, task.eval_prompts, answers)
            if against is not None:
                metrics |= pairwise_win_rate(task.score, task.eval_prompts, answers, self.answers_of(against))
                metrics |= {"reference": against.name, "judge": f"task:{task.name}"}
        except JudgeError as error:
            raise LoopError(str(error)) from None
        except Exception as error:  # the task's own code
            raise LoopError(f"task {task.name}'s score failed: {type(error).__name__}: {error}") from None
        evaluation = {
            "evaluated_at": datetime.now(UTC).isoformat(),
            "model": version.name,
            "data": {"path": self.settings.data_path, "rows": len(task.eval_prompts), "kind": "task"},
            "metrics": metrics,
        }
        self.session(lambda s: records.keep_evaluation(s, version.id, evaluation))
        return metrics

    def metrics_of(self, version: ModelVersion) -> dict[str, Any]:
        """The version's latest task metrics, evaluating it first if it has none."""
        found = records.latest_evaluation(version, self.settings.data_path)
        if found is not None and self.answers_path(version.name).is_file():
            return found["metrics"]
        return self.evaluate(version, None)

    # --- one round ----------------------------------------------------------------------------------------

    def collect(self, number: int, row: LoopRound, base: ModelVersion) -> tuple[datetime, dict[str, Any]]:
        """The round's feedback; returns (when the round began collecting, what was collected). A rerun of a
        people round waits on the batch its earlier attempt loaded."""
        settings = self.settings
        batch = f"{settings.name}-round-{number}"
        earlier = (row.feedback or {}).get("since")
        started = datetime.fromisoformat(earlier) if earlier and row.batch else datetime.now(UTC)
        self.session(lambda s: records.update_round(s, row.id, feedback={"since": started.isoformat()}))
        if settings.annotator != "people" or row.batch != batch:
            prompts = settings.task.round_prompts(number, settings.prompts_per_round)
            self.say(f"  {base.name} answers {len(prompts)} prompts, {settings.sampling.n} answers each")
            sampling = settings.sampling
            if sampling.seed is not None:  # a new seed each round
                sampling = replace(sampling, seed=sampling.seed + number)
            generated = collect.generate(self.client, prompts, sampling)
            if settings.annotator != "people":
                return started, self.simulated(generated) | {"since": started.isoformat()}
            loaded = collect.import_batch(self.client, batch, generated)
            self.session(lambda s: records.update_round(s, row.id, batch=batch))
            self.say(f"  {loaded} tasks loaded as batch {batch}")
        self.say(f"  the tasks of batch {batch} wait on the /queue page; waiting for the annotators")
        progress = collect.wait_for_people(self.client, batch, settings.people_timeout_s)
        if not progress["complete"]:
            minutes = settings.people_timeout_s / 60
            raise LoopError(f"no task of batch {batch} was annotated within {minutes:g} minutes")
        return started, {"tasks": progress["tasks"], "annotated": progress["complete"], "since": started.isoformat()}

    def simulated(self, generated: list[tuple[str, list[dict[str, Any]]]]) -> dict[str, Any]:
        scorer = self.settings.scorer or self.settings.task.prefers
        try:
            feedback = collect.annotate(self.client, generated, self.settings.annotator_name, scorer)
        except collect.ServiceError:
            raise
        except Exception as error:  # the annotator's own code
            raise LoopError(f"the simulated annotator failed: {type(error).__name__}: {error}") from None
        self.say(
            f"  the simulated annotator judged the answers to {feedback['prompts']} prompts: "
            f"{feedback['ratings_up']} thumbs up, {feedback['ratings_down']} down, {feedback['rankings']} rankings"
        )
        return feedback

    def export(self, number: int, method: str, since: datetime) -> dict[str, Any]:
        from llm_feedback_loop.feedback.filters import FeedbackFilter
        from llm_feedback_loop.training_data.export import export_to_jsonl
        from llm_feedback_loop.training_data.options import ExportOptions

        settings = self.settings
        out = (settings.folder / f"round-{number}" / "data" / f"{method}.jsonl").resolve()
        options = ExportOptions(method, format="conversational", strategy=settings.strategy)  # type: ignore[arg-type]
        annotator = settings.annotator_name if settings.annotator == "simulated" else None
        where = FeedbackFilter(since=since, annotator=annotator)
        manifest = self.database(lambda engine: export_to_jsonl(engine, options, where, out, None))
        rows = manifest["counts"]["rows"]
        if rows == 0:
            raise NoTrainingData(f"the round's feedback gives no {method} rows: every answer was judged alike")
        if method == "kto" and len([n for n in manifest["counts"].get("labels", {}).values() if n]) < 2:
            raise NoTrainingData("the round's feedback gives KTO rows of one label only: every answer judged alike")
        self.say(f"  exported {rows} {method} rows to {out.parent}")
        return {"path": str(out), "rows": rows, "manifest_counts": manifest["counts"]}

    def train(self, number: int, method: str, data: str, parent: ModelVersion) -> tuple[int, ModelVersion]:
        settings = self.settings
        output_dir = (settings.folder / f"round-{number}" / method).resolve()
        name = f"{settings.name}-r{number}-{method}"
        command = [
            sys.executable, "-m", "llm_feedback_loop", "train", method,
            "--data", data, "--model", str(parent.id), "--output-dir", str(output_dir), "--name", name,
            *settings.train_options,
        ]  # fmt: skip
        existing = self.session(lambda s: records.run_for_output(s, str(output_dir)))
        if existing is not None and existing.status == "completed" and existing.output_version_id:
            return existing.id, self.version(existing.output_version_id)  # a rerun of a failed round
        if last_checkpoint(output_dir) is not None:  # an interrupted run: continue it
            command = [sys.executable, "-m", "llm_feedback_loop", "train", "--resume", "--output-dir", str(output_dir)]
        log_path = output_dir.parent / f"{method}-train.log"
        self.say(f"  training {method} from {parent.name} (log: {log_path})")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            finished = subprocess.run(command, check=False, stdout=log, stderr=subprocess.STDOUT)
        run = self.session(lambda s: records.run_for_output(s, str(output_dir)))
        if finished.returncode != 0 or run is None or run.output_version_id is None:
            reason = run.error if run is not None and run.error else f"exit code {finished.returncode}"
            raise LoopError(f"training {method} failed: {reason} (log: {log_path})")
        metrics = run.metrics or {}
        self.say(
            f"  trained {metrics.get('global_step')} steps in {metrics.get('train_runtime', 0):.0f} s, "
            f"loss {metrics.get('first_loss', 0):.3f} → {metrics.get('last_loss', 0):.3f}"
        )
        return run.id, self.version(run.output_version_id)

    def promote(self, candidate: ModelVersion, base: ModelVersion) -> tuple[bool, list[str]]:
        from llm_feedback_loop.models.promotion import decide
        from llm_feedback_loop.models.registry import activate_version

        settings = self.settings
        candidate, base = self.version(candidate.id), self.version(base.id)  # with their new evaluations
        also = {name: 100.0 for name in settings.task.measures}
        decision = decide(candidate.extra, base.extra, settings.min_win_rate, settings.max_drop, also)
        if decision.promote:
            self.session(lambda s: activate_version(s, candidate.id))
        return decision.promote, decision.reasons

    def run_round(self, number: int) -> None:
        settings = self.settings
        base = self.active()
        row = self.session(lambda s: records.start_round(s, settings.name, number, settings.task.name, base.id))
        try:
            base_metrics = self.metrics_of(base)
            if number == 0:
                update = {"metrics": {"base": base_metrics}}
                self.session(lambda s: records.update_round(s, row.id, status="completed", **update))
                return
            feedback = row.feedback or {}
            if feedback.get("since") and len(feedback) > 1:  # a rerun: this round's feedback is in already
                since = datetime.fromisoformat(feedback["since"])
                self.say(f"  using the feedback collected by the earlier attempt at round {number}")
            else:
                since, feedback = self.collect(number, row, base)
                self.session(lambda s: records.update_round(s, row.id, feedback=feedback))
            data, run_ids, parent = dict(row.data or {}), [], base
            for method in settings.methods:
                if method not in data or not Path(data[method]["path"]).is_file():
                    data[method] = self.export(number, method, since)
                    self.session(lambda s: records.update_round(s, row.id, data=data))
                run_id, parent = self.train(number, method, data[method]["path"], parent)
                run_ids.append(run_id)
                self.session(lambda s: records.update_round(s, row.id, run_ids=run_ids))
            candidate = parent
            candidate_metrics = self.evaluate(candidate, base)
            promoted, reasons = self.promote(candidate, base)
            values = {
                "status": "completed",
                "candidate_version_id": candidate.id,
                "promoted": promoted,
                "decision": reasons,
                "metrics": {"base": base_metrics, "candidate": candidate_metrics},
            }
            self.session(lambda s: records.update_round(s, row.id, **values))
            verdict = "promoted" if promoted else "not promoted (" + "; ".join(reasons) + ")"
            self.say(f"  {candidate.name}: {verdict}")
        except NoTrainingData as error:
            update = {"metrics": {"base": base_metrics}, "decision": [str(error)]}
            self.session(lambda s: records.update_round(s, row.id, status="completed", **update))
            self.say(f"  nothing trained: {error}")
        except BaseException as error:
            message = str(error) if isinstance(error, LoopError) else f"{type(error).__name__}: {error}"
            self.session(lambda s: records.update_round(s, row.id, status="failed", error=message))
            raise

    def run(self) -> list[dict[str, Any]]:
        """Rounds 0..N (those a previous run of the same loop completed are kept); returns the rounds."""
        rows = self.session(lambda s: records.rounds_of(s, self.settings.name))
        done = {r.round for r in rows if r.status == "completed"}
        for number in range(self.settings.rounds + 1):
            if number in done:
                continue
            started = time.monotonic()
            self.say(f"round {number}" + (" (the starting version)" if number == 0 else ""))
            self.run_round(number)
            self.say(f"  round {number} took {time.monotonic() - started:.0f} s")
        return self.summary()

    def summary(self) -> list[dict[str, Any]]:
        async def load(session: AsyncSession) -> list[dict[str, Any]]:
            rows = await records.rounds_of(session, self.settings.name)
            ids = {i for r in rows for i in (r.base_version_id, r.candidate_version_id) if i}
            names = {i: (await session.get(ModelVersion, i)).name for i in ids}  # type: ignore[union-attr]
            return [records.describe_round(r, names) for r in rows]

        return self.session(load)

    def write_report(self) -> Path:
        """report.json and report.html in the loop's folder; returns the HTML path."""
        from llm_feedback_loop.loop.report import write_report

        rounds = self.summary()
        task = self.settings.task
        shown = [r["base"] for r in rounds if r["round"] == 0] + [r["candidate"] for r in rounds if r["promoted"]]

        def answers(name: str | None) -> tuple[str, list[str]]:
            path = self.answers_path(name) if name else None
            if path is None or not path.is_file():
                return "", []
            return name, json.loads(path.read_text(encoding="utf-8"))  # type: ignore[return-value]

        described = {
            "name": task.name,
            "description": task.description,
            "eval_prompts": len(task.eval_prompts),
            "prompts": task.eval_prompts,
        }
        first, last = (shown[0], shown[-1]) if shown else (None, None)
        return write_report(self.settings.folder, self.settings.name, described, rounds, answers(first), answers(last))
