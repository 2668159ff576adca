"""Benchmark of our SFT and DPO trainers (`llmfl train`) against the original's trainer script and TRL's defaults.

Run from the repository root:

    .venv/bin/python bench/bench_training.py                       # SmolLM2-135M-Instruct, 64 examples (~15 min)
    .venv/bin/python bench/bench_training.py --model tiny          # tiny random model: checks the harness (~2 min;
                                                                   # start-up dominates, so its ratios mean nothing)
    .venv/bin/python bench/bench_training.py --methods sft --only original,trl-defaults
    .venv/bin/python bench/bench_training.py --examples 32 --epochs 1 --batch-size 8 --model /path/to/folder

On the same model, the same synthetic examples (`--examples`, deterministic: short chat questions about
capitals, definitions and arithmetic with 1-3 sentence answers; for DPO a polite complete answer chosen over a
curt or wrong one, written as our export's JSONL: {"prompt", "completion"} / {"prompt", "chosen", "rejected"}),
the same epochs and batch size, each trainer runs as its own subprocess, one after the other:

  ours          `llmfl train sft|dpo --data FILE --model FOLDER --output-dir DIR --epochs E --batch-size B
                --no-register --no-bf16` (full fine-tuning, fp32 as the others); `ours-lora` adds `--lora`.
                Its DATABASE_URL points at a throw-away SQLite file. A row whose command fails is reported as
                failed with its stderr tail.
  original      bench/original_trainer.py, a stand-in for the original project's `scripts/trainer.py`: plain
                `prompt completion` text padded to 512 tokens with the loss on every token (padding included)
                through transformers' Trainer; for DPO, TRL's DPOTrainer with a second full model copy loaded as
                ref_model, max_length 512 (see that file's docstring)
  trl-defaults  `SFTTrainer(model=FOLDER, args=SFTConfig(...))` / `DPOTrainer(model=FOLDER, args=DPOConfig(...))`
                (this file, `--child trl-defaults`) on the same examples in conversational form (so the chat
                template is applied, as ours does), with only use_cpu=True, bf16=False, output_dir, epochs and
                batch size set: gradient checkpointing on, TRL's learning rates, its own reference model copy

Every child gets OMP_NUM_THREADS=`--threads` (default 1), HF_HUB_OFFLINE=1, TOKENIZERS_PARALLELISM=false, and
saves its model to a fresh output folder at the end (deleted afterwards unless --keep-outputs).

  wall s        the subprocess's wall time: start-up, model load, tokenization, training and saving
  train s       the training time the child printed (its last JSON line, or transformers' train_runtime)
  ex/s          examples x epochs / wall s (a DPO example is one prompt/chosen/rejected pair)
  peak RSS      ru_maxrss of the child from os.wait4 (it covers the child and the descendants it waited for).
                Linux carries the parent's resident peak into a child across fork/exec, so this process imports
                nothing heavy (torch is imported only in children: the model folder is resolved by one); its own
                peak is recorded as `launcher_peak_rss_mb`, the floor under every figure
  CPU           the child's user+system time / wall time (100% = one core); `other CPU` is the rest of the
                machine's busy time over the run (from /proc/stat): a row marked `*` was measured while other
                processes used more than 15% of a core (before each run the script waits up to `--quiet-wait`
                seconds, default 60, for the machine to be idle)

With the defaults on 2 cores, the original's SFT (64 examples padded to 512 tokens) takes ~6 of the ~15 minutes
and peaks at ~11 GiB of RSS. Targets (the issue): ours at least 3x the original's speed at no more than 50% of its
peak memory, and at least as fast as TRL's defaults. Figures are printed and written as JSON to
bench/results/training.json.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench_common import offline_env, verdict

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()
ORIGINAL_TRAINER = HERE.parent / "original_trainer.py"
RESULTS = ROOT / "bench" / "results" / "training.json"
VENV_BIN = Path(sys.executable).parent
LLMFL = VENV_BIN / "llmfl"

METHODS = ("sft", "dpo")
TRAINERS = ("original", "trl-defaults", "ours")  # `ours` runs the full fine-tuning row and the --lora row

TARGET_SPEEDUP = 3.0  # original wall time / ours
TARGET_MEMORY_SHARE = 0.5  # ours peak RSS / original's
TARGET_VS_TRL = 1.0  # TRL defaults wall time / ours
NOISY_OTHER_CPU_PERCENT = 15.0
STDERR_TAIL = 3000

# --------------------------------------------------------------------------------------------------
# Synthetic data: short chat Q&A, deterministic

CAPITALS = [
    ("France", "Paris", "Lyon"),
    ("Germany", "Berlin", "Munich"),
    ("Japan", "Tokyo", "Osaka"),
    ("Indonesia", "Jakarta", "Bali"),
    ("Italy", "Rome", "Milan"),
    ("Spain", "Madrid", "Barcelona"),
    ("Canada", "Ottawa", "Toronto"),
    ("Australia", "Canberra", "Sydney"),
    ("Brazil", "Brasilia", "Rio de Janeiro"),
    ("Egypt", "Cairo", "Alexandria"),
    ("Kenya", "Nairobi", "Mombasa"),
    ("Norway", "Oslo", "Bergen"),
    ("Portugal", "Lisbon", "Porto"),
    ("Turkey", "Ankara", "Istanbul"),
    ("India", "New Delhi", "Mumbai"),
    ("Mexico", "Mexico City", "Cancun"),
]

DEFINITIONS = [
    ("a hash table", "a data structure that maps keys to values through a hash function"),
    ("photosynthesis", "the process by which plants turn light, water and carbon dioxide into sugar and oxygen"),
    ("an atom", "the smallest unit of a chemical element, made of a nucleus and electrons"),
    ("gravity", "the force by which masses attract one another"),
    ("a verb", "a word that describes an action, a state or an occurrence"),
    ("a prime number", "a whole number greater than one whose only divisors are one and itself"),
    ("inflation", "the rate at which the general level of prices rises over time"),
    ("a compiler", "a program that translates source code into machine code"),
    ("democracy", "a system of government in which citizens choose their leaders by voting"),
    ("an ecosystem", "a community of living things interacting with their physical environment"),
    ("a container", "a lightweight package of an application and everything it needs to run"),
    ("a glacier", "a large, slow-moving mass of ice formed from compacted snow"),
]

CAPITAL_QUESTIONS = ("What is the capital of {}?", "Which city is the capital of {}?", "Name the capital of {}.")
DEFINITION_QUESTIONS = ("What is {}?", "Define {}.", "Can you explain what {} is?")
CURT = ("No idea.", "Look it up.", "Not sure.", "Whatever.")


def capital_example(index: int, rng: random.Random) -> tuple[str, str, str]:
    country, capital, wrong = CAPITALS[index % len(CAPITALS)]
    question = rng.choice(CAPITAL_QUESTIONS).format(country)
    good = f"The capital of {country} is {capital}."
    if rng.random() < 0.5:
        good += f" {capital} is also home to many of the country's government institutions."
    bad = f"{wrong}." if rng.random() < 0.6 else rng.choice(CURT)
    return question, good, bad


def definition_example(index: int, rng: random.Random) -> tuple[str, str, str]:
    term, meaning = DEFINITIONS[index % len(DEFINITIONS)]
    question = rng.choice(DEFINITION_QUESTIONS).format(term)
    good = f"{term[0].upper()}{term[1:]} is {meaning}."
    if rng.random() < 0.5:
        good += " I hope that helps; feel free to ask if you would like an example."
    bad = rng.choice(CURT) if rng.random() < 0.5 else f"It's {term}."
    return question, good, bad


def arithmetic_example(index: int, rng: random.Random) -> tuple[str, str, str]:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    op, name, result = rng.choice([("+", "plus", a + b), ("-", "minus", a - b), ("*", "times", a * b)])
    question = f"What is {a} {op} {b}?"
    good = f"{a} {name} {b} equals {result}."
    if rng.random() < 0.5:
        good += f" So the answer is {result}."
    bad = f"{result + rng.choice((-10, -1, 1, 10))}." if rng.random() < 0.6 else "Do it yourself."
    return question, good, bad


def synthetic_examples(count: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """`count` (question, polite complete answer, curt or wrong answer) triples, the same for the same seed."""
    rng = random.Random(seed)
    makers = (capital_example, definition_example, arithmetic_example)
    return [makers[i % len(makers)](i // len(makers), rng) for i in range(count)]


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def write_data(folder: Path, count: int) -> dict[str, Path]:
    examples = synthetic_examples(count)
    return {
        "sft": write_jsonl(folder / "sft.jsonl", [{"prompt": q, "completion": good} for q, good, _ in examples]),
        "dpo": write_jsonl(
            folder / "dpo.jsonl", [{"prompt": q, "chosen": good, "rejected": bad} for q, good, bad in examples]
        ),
    }


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


# --------------------------------------------------------------------------------------------------
# Children (each runs in its own process, so that torch is never imported by the launcher)


def child_resolve_model() -> None:
    from llm_feedback_loop.models.loader import resolve_source

    print(resolve_source(None), flush=True)


def child_tiny_model(folder: str) -> None:
    from llm_feedback_loop.models.tiny import build_tiny_model

    print(build_tiny_model(Path(folder)), flush=True)


def conversational(rows: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    """Our export's rows as TRL conversational rows: the chat template is then applied by TRL."""

    def assistant(text: str) -> list[dict[str, str]]:
        return [{"role": "assistant", "content": text}]

    converted = []
    for row in rows:
        item: dict[str, Any] = {"prompt": [{"role": "user", "content": row["prompt"]}]}
        keys = ("completion",) if method == "sft" else ("chosen", "rejected")
        item.update({key: assistant(row[key]) for key in keys})
        converted.append(item)
    return converted


def child_trl_defaults(args: argparse.Namespace) -> None:
    """TRL's trainers with their defaults: only the device, precision, output folder, epochs and batch size set."""
    from datasets import Dataset

    started = time.perf_counter()
    rows = read_jsonl(args.data)
    dataset = Dataset.from_list(conversational(rows, args.method))
    common = {
        "output_dir": str(args.output_dir),
        "use_cpu": True,
        "bf16": False,
        "num_train_epochs": args.epochs,
        "per_device_train_batch_size": args.batch_size,
    }
    if args.method == "sft":
        from trl import SFTConfig, SFTTrainer

        trainer = SFTTrainer(model=args.model, args=SFTConfig(**common), train_dataset=dataset)
    else:
        from trl import DPOConfig, DPOTrainer

        trainer = DPOTrainer(model=args.model, args=DPOConfig(**common), train_dataset=dataset)
    training = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - training
    saving = time.perf_counter()
    trainer.save_model(str(args.output_dir))
    save_seconds = time.perf_counter() - saving
    summary = {
        "trainer": "trl-defaults",
        "mode": args.method,
        "examples": len(rows),
        "epochs": args.epochs,
        "steps": trainer.state.global_step,
        "train_seconds": round(train_seconds, 3),
        "save_seconds": round(save_seconds, 3),
        "gradient_checkpointing": trainer.args.gradient_checkpointing,
        "learning_rate": trainer.args.learning_rate,
        "total_seconds": round(time.perf_counter() - started, 3),
    }
    print(json.dumps(summary), flush=True)


# --------------------------------------------------------------------------------------------------
# Running one trainer and measuring it


@dataclass
class Row:
    method: str
    trainer: str
    command: list[str]
    examples: int
    epochs: float
    returncode: int | None = None
    wall_s: float | None = None
    examples_per_s: float | None = None
    train_s: float | None = None
    train_examples_per_s: float | None = None
    steps: int | None = None
    peak_rss_mb: float | None = None
    cpu_s: float | None = None
    cpu_percent: float | None = None
    other_cpu_percent: float | None = None
    output_mb: float | None = None
    child_summary: dict[str, Any] | None = None
    failure: str | None = None
    stderr_tail: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.wall_s is not None


def child_env(threads: int, workdir: Path) -> dict[str, str]:
    return offline_env(threads, f"sqlite+aiosqlite:///{workdir / 'bench.db'}")


def machine_busy_seconds() -> float:
    """CPU time the whole machine has been busy since boot (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = stat.readline().split()[1:]
    ticks = [int(value) for value in fields[:8]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_wait_s: float, busy_percent: float = 20.0) -> float:
    """Wait (up to max_wait_s) until the machine is idle but for busy_percent of one core; the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < max_wait_s:
        before = machine_busy_seconds()
        time.sleep(1.0)
        if 100 * (machine_busy_seconds() - before) <= busy_percent:
            break
    return time.perf_counter() - started


def launcher_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def launcher_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def wait_child(process: subprocess.Popen[bytes], timeout: float) -> tuple[int, Any, bool]:
    """Reap the child with os.wait4: (exit code, its rusage, timed out). On timeout its process group is killed."""
    give_up = time.monotonic() + timeout
    timed_out = False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage, timed_out
        if not timed_out and time.monotonic() > give_up:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its own session: start_new_session=True
        time.sleep(0.05)


def last_json_line(text: str) -> dict[str, Any] | None:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            with contextlib.suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict):
                    return value
    return None


TRAIN_SECONDS_KEYS = ("train_seconds", "training_seconds", "train_s", "train_runtime")
TRAIN_RUNTIME = re.compile(r"""['"]train_runtime['"]\s*:\s*['"]?([0-9.]+)""")


def train_seconds_from(summary: dict[str, Any] | None, output: str) -> float | None:
    """The training time a child printed: a key of its JSON summary, else transformers' logged train_runtime."""
    for key in TRAIN_SECONDS_KEYS:
        if summary and isinstance(summary.get(key), (int, float)):
            return float(summary[key])
    matches = TRAIN_RUNTIME.findall(output)
    return float(matches[-1]) if matches else None


STEPS_LINE = re.compile(r"\bsteps:\s*(\d+)")


def steps_from(summary: dict[str, Any] | None, output: str) -> int | None:
    """The optimizer steps a child printed: a key of its JSON summary, else a `steps: N` line."""
    for key in ("steps", "global_step", "train_steps"):
        if summary and isinstance(summary.get(key), int):
            return int(summary[key])
    matches = STEPS_LINE.findall(output)
    return int(matches[-1]) if matches else None


def folder_mb(folder: Path) -> float | None:
    if not folder.exists():
        return None
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def run_row(row: Row, workdir: Path, env: dict[str, str], args: argparse.Namespace, output_dir: Path) -> Row:
    stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
    timeout = args.timeout
    print(f"\n== {row.method} / {row.trainer}: {' '.join(row.command)}", flush=True)
    waited = wait_for_quiet(args.quiet_wait)
    if waited > 2.0:
        print(f"   (waited {waited:.0f} s for other processes to leave the CPU)", flush=True)
    busy_before, self_before = machine_busy_seconds(), launcher_cpu_seconds()
    started = time.perf_counter()
    try:
        with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                row.command, cwd=workdir, env=env, stdout=stdout, stderr=stderr, start_new_session=True
            )
            code, usage, timed_out = wait_child(process, timeout)
    except OSError as error:
        row.failure = f"cannot start: {error}"
        print(f"   FAILED: {row.failure}", flush=True)
        return row
    wall = time.perf_counter() - started
    busy = machine_busy_seconds() - busy_before
    launcher = launcher_cpu_seconds() - self_before
    out_text = stdout_path.read_text(errors="replace")
    err_text = stderr_path.read_text(errors="replace")
    row.returncode = code
    row.cpu_s = usage.ru_utime + usage.ru_stime
    row.cpu_percent = 100 * row.cpu_s / wall
    row.other_cpu_percent = max(0.0, 100 * (busy - row.cpu_s - launcher) / wall)
    row.peak_rss_mb = usage.ru_maxrss / 1024  # KiB on Linux
    if code != 0 or timed_out:
        row.failure = f"timed out after {timeout:.0f} s" if timed_out else f"exit code {code}"
        row.stderr_tail = (err_text or out_text)[-STDERR_TAIL:]
        print(f"   FAILED ({row.failure}) after {wall:.1f} s; stderr tail:\n{indent(row.stderr_tail)}", flush=True)
        return row
    row.wall_s = wall
    row.examples_per_s = row.examples * row.epochs / wall
    row.child_summary = last_json_line(out_text)
    row.train_s = train_seconds_from(row.child_summary, out_text + err_text)
    if row.train_s:
        row.train_examples_per_s = row.examples * row.epochs / row.train_s
    row.steps = steps_from(row.child_summary, out_text + err_text)
    row.output_mb = folder_mb(output_dir)
    print("   " + row_line(row), flush=True)
    return row


def indent(text: str, prefix: str = "     | ") -> str:
    return "\n".join(prefix + line for line in text.rstrip().splitlines())


# --------------------------------------------------------------------------------------------------
# The commands


def trainer_command(
    trainer: str, method: str, model: str, data: Path, out: Path, args: argparse.Namespace
) -> list[str]:
    epochs, batch = f"{args.epochs:g}", str(args.batch_size)
    if trainer in ("ours", "ours-lora"):
        command = [str(LLMFL), "train", method, "--data", str(data), "--model", model, "--output-dir", str(out)]
        command += ["--epochs", epochs, "--batch-size", batch, "--no-register", "--no-bf16"]  # fp32 as the others
        return command + (["--lora"] if trainer == "ours-lora" else [])
    if trainer == "original":
        command = [sys.executable, str(ORIGINAL_TRAINER), "--mode", method, "--model", model, "--data", str(data)]
        return [*command, "--output-dir", str(out), "--epochs", epochs, "--batch-size", batch]
    if trainer == "trl-defaults":
        command = [sys.executable, str(HERE), "--child", "trl-defaults", "--method", method, "--model", model]
        return [*command, "--data", str(data), "--output-dir", str(out), "--epochs", epochs, "--batch-size", batch]
    raise ValueError(trainer)


def row_names(only: list[str], lora: bool) -> list[str]:
    names = []
    for trainer in only:
        names.append(trainer)
        if trainer == "ours" and lora:
            names.append("ours-lora")
    return names


def run_helper_child(argv: list[str], env: dict[str, str]) -> str:
    """Run this file in a child mode that prints one path (model resolution imports torch: not in this process)."""
    done = subprocess.run([sys.executable, str(HERE), *argv], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-STDERR_TAIL:]}")
    return done.stdout.strip().splitlines()[-1]


def prepare_model(spec: str, tmp: Path, env: dict[str, str]) -> str:
    if spec == "smollm2":
        return run_helper_child(["--child", "resolve-model"], env)
    if spec == "tiny":
        return run_helper_child(["--child", "tiny-model", "--output-dir", str(tmp / "tiny-model")], env)
    path = Path(spec).expanduser().resolve()
    if not path.exists():
        raise SystemExit(f"model folder {spec} does not exist (use smollm2, tiny or a folder)")
    return str(path)


# --------------------------------------------------------------------------------------------------
# Reporting

HEADER = (
    f"{'method':<7}{'trainer':<14}{'wall s':>8}{'train s':>9}{'ex/s':>8}{'train ex/s':>11}{'steps':>6}"
    f"{'peak RSS':>11}{'CPU':>6}{'other CPU':>10}{'output':>10}"
)


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def row_line(row: Row) -> str:
    if not row.ok:
        return f"{row.method:<7}{row.trainer:<14}  FAILED: {row.failure}"
    noisy = row.other_cpu_percent is not None and row.other_cpu_percent > NOISY_OTHER_CPU_PERCENT
    return (
        f"{row.method:<7}{row.trainer:<14}{fmt(row.wall_s, '.1f'):>8}{fmt(row.train_s, '.1f'):>9}"
        f"{fmt(row.examples_per_s, '.2f'):>8}{fmt(row.train_examples_per_s, '.2f'):>11}{fmt(row.steps, 'd'):>6}"
        f"{fmt(row.peak_rss_mb, '.0f'):>7} MiB{fmt(row.cpu_percent, '.0f'):>5}%{fmt(row.other_cpu_percent, '.0f'):>9}%"
        f"{fmt(row.output_mb, '.0f'):>6} MiB" + (" *" if noisy else "")
    )


def find(rows: list[Row], method: str, trainer: str) -> Row | None:
    return next((r for r in rows if r.method == method and r.trainer == trainer and r.ok), None)


def compare(rows: list[Row], method: str, ours_name: str) -> dict[str, Any]:
    """Speed-up over the original, share of its peak memory, and speed against TRL's defaults, with verdicts."""
    ours, original = find(rows, method, ours_name), find(rows, method, "original")
    trl = find(rows, method, "trl-defaults")
    result: dict[str, Any] = {}
    if ours is None:
        return result
    assert ours.wall_s and ours.peak_rss_mb
    if original and original.wall_s and original.peak_rss_mb:
        speedup, share = original.wall_s / ours.wall_s, ours.peak_rss_mb / original.peak_rss_mb
        result.update(speedup_vs_original=speedup, memory_share_of_original=share)
        if original.train_s and ours.train_s:
            result["train_speedup_vs_original"] = original.train_s / ours.train_s
        print(
            f"  {method} {ours_name:<10} vs original:     {speedup:5.2f}x faster (target >= {TARGET_SPEEDUP:g}x "
            f"{verdict(speedup >= TARGET_SPEEDUP)}), peak memory {100 * share:4.0f}% of its "
            f"(target <= {100 * TARGET_MEMORY_SHARE:.0f}% {verdict(share <= TARGET_MEMORY_SHARE)})"
        )
    if trl and trl.wall_s and trl.peak_rss_mb:
        speed, share = trl.wall_s / ours.wall_s, ours.peak_rss_mb / trl.peak_rss_mb
        result.update(speedup_vs_trl_defaults=speed, memory_share_of_trl_defaults=share)
        if trl.train_s and ours.train_s:
            result["train_speedup_vs_trl_defaults"] = trl.train_s / ours.train_s
        print(
            f"  {method} {ours_name:<10} vs TRL defaults: {speed:5.2f}x faster (target >= {TARGET_VS_TRL:g}x "
            f"{verdict(speed >= TARGET_VS_TRL)}), peak memory {100 * share:4.0f}% of its"
        )
    return result


def summarize(rows: list[Row], methods: list[str]) -> dict[str, Any]:
    print("\n== Results (wall time and peak RSS of each trainer's process; ex/s = examples x epochs / wall s)")
    print(HEADER)
    for row in rows:
        print(row_line(row))
    print()
    summary: dict[str, Any] = {}
    for method in methods:
        for ours_name in ("ours", "ours-lora"):
            figures = compare(rows, method, ours_name)
            if figures:
                summary[f"{method}_{ours_name}"] = figures
        original, trl = find(rows, method, "original"), find(rows, method, "trl-defaults")
        if original and trl and original.wall_s and trl.wall_s and original.peak_rss_mb and trl.peak_rss_mb:
            summary[f"{method}_trl_defaults_vs_original"] = {
                "speedup": original.wall_s / trl.wall_s,
                "memory_share": trl.peak_rss_mb / original.peak_rss_mb,
            }
            print(
                f"  {method} (context) TRL defaults vs original: {original.wall_s / trl.wall_s:5.2f}x faster, "
                f"peak memory {100 * trl.peak_rss_mb / original.peak_rss_mb:4.0f}% of its"
            )
    for row in rows:
        if not row.ok:
            print(f"  {row.method} / {row.trainer} FAILED: {row.failure}")
    return summary


# --------------------------------------------------------------------------------------------------


def parse_list(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = sorted(set(items) - set(allowed))
    if unknown:
        raise SystemExit(f"unknown {what} {unknown}; choose from {', '.join(allowed)}")
    return items


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--model", default="smollm2", help="smollm2 (default: the cached folder), tiny, or a folder")
    parser.add_argument("--examples", type=int, default=64, help="synthetic examples (pairs for DPO); default 64")
    parser.add_argument("--epochs", type=float, default=1.0, help="default 1")
    parser.add_argument("--batch-size", type=int, default=8, help="per-device batch size of every trainer; default 8")
    parser.add_argument("--methods", default=",".join(METHODS), help="sft,dpo (default both)")
    parser.add_argument("--only", default=",".join(TRAINERS), help=f"trainers to run (default {','.join(TRAINERS)})")
    parser.add_argument("--no-lora", action="store_true", help="skip the `ours --lora` rows")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of every child (default 1)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before a child is killed (1800)")
    parser.add_argument(
        "--quiet-wait", type=float, default=60.0, help="before each run, wait up to this long for an idle machine (60)"
    )
    parser.add_argument("--keep-outputs", type=Path, help="keep the data and the trained models in this folder")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    # Child modes (this file run as a subprocess).
    parser.add_argument("--child", choices=("trl-defaults", "resolve-model", "tiny-model"), help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output-dir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_child_mode(args: argparse.Namespace) -> int:
    if args.child == "resolve-model":
        child_resolve_model()
    elif args.child == "tiny-model":
        child_tiny_model(str(args.output_dir))
    else:
        child_trl_defaults(args)
    return 0


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("torch", "transformers", "trl", "peft", "datasets"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[package] = importlib.metadata.version(package)
    return found


def run_all(args: argparse.Namespace, tmp: Path, methods: list[str], trainers: list[str]) -> tuple[str, list[Row]]:
    env = child_env(args.threads, tmp)
    model = prepare_model(args.model, tmp, env)
    data = write_data(tmp, args.examples)
    print(f"model {model}\ndata {', '.join(str(data[m]) for m in methods)}", flush=True)
    rows = []
    for method in methods:
        for trainer in trainers:
            workdir = tmp / f"{method}-{trainer}"
            workdir.mkdir()
            out = workdir / "out"
            command = trainer_command(trainer, method, model, data[method], out, args)
            row = Row(method=method, trainer=trainer, command=command, examples=args.examples, epochs=args.epochs)
            rows.append(run_row(row, workdir, env, args, out))
            if not args.keep_outputs:
                shutil.rmtree(out, ignore_errors=True)
    return model, rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return run_child_mode(args)
    methods = parse_list(args.methods, METHODS, "methods")
    trainers = row_names(parse_list(args.only, TRAINERS, "trainers"), lora=not args.no_lora)
    found = versions()
    print(
        f"methods {', '.join(methods)}; trainers {', '.join(trainers)}; {args.examples} examples, {args.epochs:g} "
        f"epoch(s), batch size {args.batch_size}; OMP_NUM_THREADS={args.threads}\n{os.cpu_count()} CPUs; load "
        f"average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        + ", ".join(f"{name} {version}" for name, version in found.items()),
        flush=True,
    )
    started = time.perf_counter()
    if args.keep_outputs:
        args.keep_outputs.mkdir(parents=True, exist_ok=True)
        tmp_context: Any = contextlib.nullcontext(str(args.keep_outputs.resolve()))
    else:
        tmp_context = tempfile.TemporaryDirectory(prefix="bench-training-")
    with tmp_context as tmp:
        model, rows = run_all(args, Path(tmp), methods, trainers)
    summary = summarize(rows, methods)
    total = time.perf_counter() - started
    launcher_peak = launcher_peak_rss_mb()
    print(f"\ntotal time {total:.0f} s; this launcher's own peak RSS {launcher_peak:.0f} MiB", flush=True)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(
        json.dumps(
            {
                "model": model,
                "model_option": args.model,
                "examples": args.examples,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "omp_num_threads": args.threads,
                "cpus": os.cpu_count(),
                "versions": found,
                "sample_data": [list(example) for example in synthetic_examples(min(args.examples, 6))],
                "launcher_peak_rss_mb": launcher_peak,
                "targets": {
                    "speedup_vs_original": TARGET_SPEEDUP,
                    "memory_share_of_original": TARGET_MEMORY_SHARE,
                    "speedup_vs_trl_defaults": TARGET_VS_TRL,
                },
                "total_s": total,
                "summary": summary,
                "rows": [asdict(row) for row in rows],
            },
            indent=2,
        )
    )
    print(f"written to {args.results}")
    return 1 if any(not row.ok for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
