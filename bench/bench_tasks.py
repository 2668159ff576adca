"""Benchmark of `llmfl loop` with its defaults on every built-in task: two rounds each, and a shuffled-label
control round beside them, on SmolLM2-135M-Instruct; one table (the acceptance of issue 14).

Run from the repository root:

    .venv/bin/python bench/bench_tasks.py                          # every task, 2 rounds + control (~64 min)
    .venv/bin/python bench/bench_tasks.py --tasks bullets --rounds 1 --no-control
    .venv/bin/python bench/bench_tasks.py --model tiny --rounds 1   # checks the harness (~3 min; the tiny
                                                                    # model's figures mean nothing)

Each task runs as a user would run it: `llmfl loop --task TASK --rounds 2` with no other option, on a database
and folder of its own (SmolLM2 is registered as the base on first use). The control is `llmfl loop --task TASK
--rounds 1 --control shuffled`, on another fresh database: the same round, with the simulated annotator's
judgements shuffled among each prompt's answers. Its base's held-out answers are the real run's (the same
model, greedy), copied rather than computed again.

Figures come from each loop's report.json: the task score (%) of the base and of the version active after each
round, the round-1 gain with its 95% bootstrap interval, the coherence, and each round's CPU-minutes as the
loop measures them (the loop process, its service and its training processes). A round meets the aim when its
gain is at least +20 points with the interval's lower end above 0, coherence within 2 points of the base, in at
most 12 CPU-minutes; the control when its gain is smaller than half the real round's interval width.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_common import offline_env

from llm_feedback_loop.models.promotion import points_dropped

TASKS = ("concise", "specific", "bullets", "plain")


def run_loop(options: list[str], folder: Path, threads: int, log: Path) -> dict[str, Any]:
    """`llmfl loop OPTIONS` on a fresh database in `folder`; returns its report.json."""
    folder.mkdir(parents=True, exist_ok=True)
    env = os.environ | offline_env(threads, f"sqlite+aiosqlite:///{folder / 'loop.db'}")
    env |= {"CHECKPOINT_DIR": str(folder / "checkpoints"), "TRL_EXPERIMENTAL_SILENCE": "1", "COLUMNS": "200"}
    command = [sys.executable, "-m", "llm_feedback_loop", "loop", *options, "--folder", str(folder / "loop")]
    with log.open("wb") as handle:
        finished = subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if finished.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"llmfl loop {' '.join(options)} failed ({finished.returncode}):\n{tail}")
    return json.loads((folder / "loop" / "report.json").read_text(encoding="utf-8"))


def active_after(round_: dict[str, Any]) -> dict[str, Any]:
    metrics = round_.get("metrics") or {}
    return (metrics.get("candidate") if round_.get("promoted") else None) or metrics.get("base") or {}


def pct(value: Any) -> str:
    return f"{100 * value:.1f}" if isinstance(value, int | float) else "–"


def cost_of(round_: dict[str, Any]) -> float | None:
    return ((round_.get("metrics") or {}).get("cost") or {}).get("cpu_minutes")


def shown_interval(row: dict[str, Any], name: str) -> str:
    if not isinstance(row.get(name), float):
        return "–"
    return f"{100 * row[name]:+.1f} [{100 * row[name + '_low']:+.1f}, {100 * row[name + '_high']:+.1f}]"


def summarise(name: str, report: dict[str, Any], control: dict[str, Any] | None) -> dict[str, Any]:
    rounds = {r["round"]: r for r in report["rounds"]}
    base = rounds[0]["metrics"]["base"]
    first = rounds.get(1, {})
    candidate = (first.get("metrics") or {}).get("candidate") or {}
    row: dict[str, Any] = {
        "task": name,
        "base": base.get("task_score"),
        "base_coherence": base.get("coherence"),
        "after": [active_after(rounds[n]).get("task_score") for n in sorted(rounds) if n > 0],
        "coherence_after": [active_after(rounds[n]).get("coherence") for n in sorted(rounds) if n > 0],
        "promoted": [rounds[n]["promoted"] for n in sorted(rounds) if n > 0],
        "cpu_minutes": [cost_of(rounds[n]) for n in sorted(rounds)],
        "gain": candidate.get("gain"),
        "gain_low": candidate.get("gain_low"),
        "gain_high": candidate.get("gain_high"),
        "candidate_coherence": candidate.get("coherence"),
        # the sampled answers' figures (--eval-samples per held-out prompt), where the loop drew them
        "sampled_base": base.get("sampled_task_score"),
        "sampled_gain": candidate.get("sampled_gain"),
        "sampled_gain_low": candidate.get("sampled_gain_low"),
        "sampled_gain_high": candidate.get("sampled_gain_high"),
        "sampled_coherence": (base.get("sampled_coherence"), candidate.get("sampled_coherence")),
    }
    if control is not None:
        last = control["rounds"][-1]
        controlled = ((last.get("metrics") or {}).get("candidate")) or {}
        if not controlled and last.get("round", 0) > 0 and not last.get("candidate"):
            # the control round trained nothing it would evaluate (its held-out pairs no better than chance):
            # the active version did not move
            controlled = {"gain": 0.0, "gain_low": 0.0, "gain_high": 0.0}
            row["control_note"] = "; ".join(last.get("decision") or [])
        row["control_gain"] = controlled.get("gain")
        row["control_gain_low"] = controlled.get("gain_low")
        row["control_gain_high"] = controlled.get("gain_high")
    return row


def verdicts(row: dict[str, Any]) -> list[str]:
    """The aims a task missed (empty: all met)."""
    missed = []
    gain, low = row.get("gain"), row.get("gain_low")
    if not isinstance(gain, float) or gain < 0.20 or not isinstance(low, float) or low <= 0:
        missed.append("gain ≥ +20 with its interval above 0")
    coherence = row.get("candidate_coherence")
    if not isinstance(coherence, float) or points_dropped(row["base_coherence"], coherence) > 2:
        missed.append("coherence within 2 points")
    cpu = row["cpu_minutes"][1] if len(row["cpu_minutes"]) > 1 else None
    if not isinstance(cpu, float) or cpu > 12:
        missed.append("≤ 12 CPU-minutes")
    if len(row["after"]) > 1 and isinstance(row["after"][1], float) and row["after"][1] <= row["after"][0]:
        missed.append("round 2 adds more")
    if "control_gain" in row and isinstance(low, float):
        half = (row["gain_high"] - low) / 2
        if not isinstance(row["control_gain"], float) or abs(row["control_gain"]) >= half:
            missed.append("control below the interval's half-width")
    return missed


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| task | base | after round 1 | after round 2 | round-1 gain [95% interval] | coherence base → round 1 "
        "| sampled: base, round-1 gain, coherence | CPU-min round 1 / 2 | shuffled control gain | aims missed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        after = row["after"] + [None] * (2 - len(row["after"]))
        gain, control = shown_interval(row, "gain"), shown_interval(row, "control_gain")
        if row.get("control_note"):
            control = "+0.0 (no candidate: the round refused its training)"
        cpu = " / ".join(f"{value:.1f}" if isinstance(value, float) else "–" for value in row["cpu_minutes"][1:3])
        promoted = ["" if p else " (kept)" for p in row["promoted"]] + ["", ""]
        coherence = " → ".join(pct(value) for value in row["sampled_coherence"])
        sampled = f"{pct(row['sampled_base'])}, {shown_interval(row, 'sampled_gain')}, {coherence}"
        lines.append(
            f"| {row['task']} | {pct(row['base'])} | {pct(after[0])}{promoted[0]} | {pct(after[1])}{promoted[1]} "
            f"| {gain} | {pct(row['base_coherence'])} → {pct(row.get('candidate_coherence'))} | {sampled} | {cpu} "
            f"| {control} "
            f"| {'; '.join(verdicts(row)) or 'none'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names or MODULE:NAME")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default="smollm2", help="smollm2 (the default base) or tiny (harness check)")
    parser.add_argument("--no-control", action="store_true", help="skip the shuffled-label control rounds")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of every process")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the run's files here")
    parser.add_argument(
        "--loop-args", default="", help='more `llmfl loop` options for every run, e.g. "--seed 3 --no-repetition-pairs"'
    )
    args = parser.parse_args(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="bench-tasks-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    extra: list[str] = shlex.split(args.loop_args)
    if args.model == "tiny":
        from llm_feedback_loop.models.tiny import build_tiny_model

        tiny = build_tiny_model(workdir / "tiny-model")
        os.environ["BASE_MODEL"] = str(tiny)
        # random answers: a score that tells them apart, and every candidate promoted, so every stage runs
        extra += ["--annotator", "tests.loop.scorers:by_length", "--prompts-per-round", "8", "--max-tokens", "12"]
        extra += ["--min-gain", "-100", "--min-win-rate", "0", "--max-drop", "100"]
    rows = []
    started = time.monotonic()
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        name = task.rpartition(":")[2] if ":" in task else task
        folder = workdir / name.replace("/", "_")
        print(f"== {task}: llmfl loop --task {task} --rounds {args.rounds}  (files in {folder})", flush=True)
        report = run_loop(["--task", task, "--rounds", str(args.rounds), "--name", name, *extra], folder / "real",
                          args.threads, folder / "real.log")  # fmt: skip
        control = None
        if not args.no_control:
            answers = folder / "control" / "loop" / "answers"
            answers.mkdir(parents=True, exist_ok=True)
            base_name = report["rounds"][0]["base"]
            for kept in (folder / "real" / "loop" / "answers").glob("*.json"):
                if kept.name.startswith(base_name.replace("/", "_")):
                    shutil.copy(kept, answers / kept.name)
            control = run_loop(
                ["--task", task, "--rounds", "1", "--name", f"{name}-control", "--control", "shuffled", *extra],
                folder / "control", args.threads, folder / "control.log",
            )  # fmt: skip
        row = summarise(name, report, control)
        rows.append(row)
        print(table([row]).splitlines()[-1], f"({(time.monotonic() - started) / 60:.1f} min so far)", flush=True)
    print("\n" + table(rows))
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
