"""Benchmark of one round of the loop: task-score gain per CPU-minute, ours against the original's pipeline,
on the same simulated feedback, in one run.

Run from the repository root:

    .venv/bin/python bench/bench_loop.py                  # SmolLM2-135M-Instruct, 64 prompts x 4 answers (~22 min)
    .venv/bin/python bench/bench_loop.py --pipelines ours,original   # the offline pipelines only (~17 min)
    .venv/bin/python bench/bench_loop.py --task all --pipelines ours,original   # every built-in task (~66 min)
    .venv/bin/python bench/bench_loop.py --model tiny --max-new-tokens 8   # checks the harness (~1 min; the
                                                                           # tiny model's figures mean nothing)

The task is the demo's (`llm_feedback_loop.objectives.concise`: answers of one sentence of at most 15 words are
preferred) unless `--task` names another built-in task (specific, bullets, plain), all of them (`all`: each in
turn, then a table of every task's gain per CPU-minute), or MODULE:NAME. The round:

  shared    the base model samples `--answers` answers to each of `--prompts` feedback prompts (temperature
            0.8, seeded); the simulated annotator scores each answer as the loop's does (the task's
            preference: short and coherent). The base model's greedy
            answers to the task's held-out prompts give the starting task score.
  ours      the judgements go through our API as the loop sends them (`POST /v1/generations` for each
            answer, then `POST /v1/annotations`: a thumbs on each answer, a ranking only when the scores order
            the answers strictly); our export as a round of `llmfl loop` makes it (`GET /v1/export/dpo`,
            best-vs-worst, at most 2 pairs a prompt: its clearest; pairs from thumbs: an answer voted up over
            one voted down for the same prompt, ties dropped); `llmfl train dpo` with its own defaults, the
            small-data recipe (`training/recipes.py`: LoRA r16 on the top 40% of the layers, lr 3e-4, beta
            0.5, three passes over the pairs in 10 to 20 steps of 8), as `llmfl loop` trains.
  original  the same judgements as the original's API takes them: a full ranking per prompt
            (`POST /rlhf-feedback`, ranking by score, ties in the order the answers came), exported by the
            original's rules (`GET /rlhf-feedback/export`: every pair of the ranking, plain text), trained by
            `bench/original_trainer.py --mode dpo` (its settings: full fine-tuning, a second full model as
            reference, TRL's defaults otherwise, 1 epoch, batch 8).

  grpo      online RL on the same stored feedback (`--pipelines` chooses which run): `llmfl train reward
  rloo      --from-db` (all the feedback, a fifth of its prompts held out: its pair accuracy is printed), then
            `llmfl train grpo` (or `rloo`) `--from-db` on the stored prompts, rewarded by that reward model,
            with the online methods' defaults (LoRA on the top 40% of the layers, lr 1e-3, 4 answers of up
            to 64 tokens per prompt, beta 0.1), 20 steps of 2 prompts. Its cost includes the reward model's.

The cost is the CPU time (user + system) of the export, in this process through each one's HTTP export
endpoint, plus that of the training subprocess (from the kernel's accounting of finished children). The gain
is the task score of the trained model minus the base's, on the same held-out prompts, with greedy answers
under the model's chat template. Coherence and correctness (`concise.coherent`, `concise.correct`) are printed
beside it: a gain that breaks them is no gain.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from math import nan
from pathlib import Path
from typing import Any

from bench_common import offline_env

HERE = Path(__file__).resolve().parent
ORIGINAL_TRAINER = HERE / "original_trainer.py"


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(command: list[str], env: dict[str, str], log: Path) -> float:
    """Run a subprocess to the end; returns its CPU seconds (and fails loudly with its log's tail)."""
    before = children_cpu_seconds()
    with log.open("wb") as handle:
        finished = subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if finished.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"{' '.join(command[:6])} ... failed ({finished.returncode}):\n{tail}")
    return children_cpu_seconds() - before


def sample_answers(source: str, prompts: list[str], count: int, max_new_tokens: int) -> list[list[str]]:
    """`count` sampled answers per prompt from the base model (seeded, batched)."""
    import torch

    from llm_feedback_loop.models.loader import load_model

    torch.manual_seed(0)
    loaded = load_model(source, device="cpu")
    tokenizer, model = loaded.tokenizer, loaded.model
    tokenizer.padding_side = "left"
    answers: list[list[str]] = []
    for start in range(0, len(prompts), 16):
        batch = prompts[start : start + 16]
        texts = [
            tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
            for p in batch
        ]
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            output = model.generate(
                **encoded,
                do_sample=True,
                temperature=0.8,
                top_p=0.95,
                max_new_tokens=max_new_tokens,
                num_return_sequences=count,
                pad_token_id=tokenizer.pad_token_id,
            )
        decoded = tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        answers += [[text.strip() for text in decoded[i * count : (i + 1) * count]] for i in range(len(batch))]
    return answers


def harness_preference(prompt: str, answer: str) -> float:
    """--model tiny: the tiny model's answers never comply, so its annotator likes half of them at random
    (fixed by a hash of the text) so that every pipeline has pairs to train on; its figures mean nothing."""
    import hashlib

    return float(hashlib.sha256(answer.encode("utf-8")).digest()[0] % 2)


def held_out_metrics(task: Any, source: str, max_new_tokens: int) -> dict[str, float]:
    from llm_feedback_loop.evaluation.answers import answer_prompts
    from llm_feedback_loop.evaluation.objective import objective_metrics

    return objective_metrics(task, task.eval_prompts, answer_prompts(source, task.eval_prompts, max_new_tokens))


def store_ours(client: Any, prompts: list[str], answers: list[list[str]], scores: list[list[float]]) -> None:
    from llm_feedback_loop.loop.budget import judgement

    for prompt, texts, marks in zip(prompts, answers, scores, strict=True):
        kept = [(t, m) for t, m in zip(texts, marks, strict=True) if t]
        if not kept:
            continue
        ids = [
            client.post("/v1/generations", json={"prompt": prompt, "response": t, "model_version": "base"}).json()["id"]
            for t, _ in kept
        ]
        ranking, ratings = judgement([m for _, m in kept])
        body = {
            "prompt": prompt,
            "annotator": "simulated",
            "answers": [{"generation_id": i, "rating": r} for i, r in zip(ids, ratings, strict=True)],
            "ranking": ranking,
        }
        response = client.post("/v1/annotations", json=body)
        assert response.status_code == 201, response.text


def store_original(client: Any, prompts: list[str], answers: list[list[str]], scores: list[list[float]]) -> None:
    for prompt, texts, marks in zip(prompts, answers, scores, strict=True):
        kept = [(t, m) for t, m in zip(texts, marks, strict=True) if t]
        if len(kept) < 2:
            continue
        ranking = sorted(range(len(kept)), key=lambda i: -kept[i][1])  # stable: ties keep their order
        body = {"prompt": prompt, "responses": [{"id": str(i), "text": t} for i, (t, _) in enumerate(kept)]}
        response = client.post("/rlhf-feedback", json=body | {"ranking": ranking})
        assert response.status_code == 201, response.text


LOOP_PAIRS_PER_PROMPT = 2  # `llmfl loop --pairs-per-prompt`'s default


def service_client(database: Path, max_pairs_per_prompt: int = 64) -> Any:
    from fastapi.testclient import TestClient

    from llm_feedback_loop.api.app import create_app
    from llm_feedback_loop.settings import Settings

    # In-process, on no network: authentication off (it is measured by bench_feedback.py), the loopback name.
    settings = Settings(
        database_url=f"sqlite:///{database}", auth_required=False, max_pairs_per_prompt=max_pairs_per_prompt
    )
    return TestClient(create_app(settings), base_url="http://127.0.0.1")


def child_env(workdir: Path, threads: int) -> dict[str, str]:
    return offline_env(threads, f"sqlite:///{workdir / 'ours.db'}") | {
        "CHECKPOINT_DIR": str(workdir / "checkpoints"),
        "TRL_EXPERIMENTAL_SILENCE": "1",
    }


def prepare_model(spec: str, workdir: Path) -> str:
    if spec == "smollm2":
        from llm_feedback_loop.models.loader import resolve_source

        return resolve_source(None)
    if spec == "tiny":
        from llm_feedback_loop.models.tiny import build_tiny_model

        return str(build_tiny_model(workdir / "tiny-model"))
    return str(Path(spec).resolve())


# The online pipelines' settings: the methods' own defaults (LoRA on the top layers, their learning rate),
# 20 steps of 8 (GRPO/RLOO: 2 prompts x 4 answers); the reward model trains LoRA on the same layers.
ONLINE_CONFIG = """\
lora: true
lora_top_layers: 0.4
max_steps: 20
batch_size: 8
max_length: 256
logging_steps: 1
save_steps: 10000
"""
TINY_ONLINE_CONFIG = """\
max_steps: 4
batch_size: 4
num_generations: 2
max_completion_length: 8
max_length: 128
logging_steps: 1
save_steps: 10000
"""
PIPELINES = ("ours", "original", "grpo", "rloo")


def last_logged(run_folder: Path, key: str) -> float | None:
    """The last value of `key` in a training run's metrics.jsonl."""
    found = None
    for text in (run_folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        value = json.loads(text).get(key)
        if isinstance(value, int | float):
            found = value
    return found


def train_reward_model(source: str, workdir: Path, env: dict[str, str], config: Path) -> tuple[Path, float]:
    """The online pipelines' reward model, from all the stored feedback; (its run folder, its CPU seconds)."""
    folder = workdir / "reward" / "run"
    cpu = run_child(
        [sys.executable, "-m", "llm_feedback_loop", "train", "reward", "--from-db", "--test-size", "0.2",
         "--model", source, "--output-dir", str(folder), "--config", str(config), "--no-register"],
        env, workdir / "reward-train.log",
    )  # fmt: skip
    accuracy = last_logged(folder, "eval_accuracy")
    shown = f"{100 * accuracy:.1f}%" if accuracy is not None else "not measured"
    print(f"reward model: {cpu / 60:.2f} CPU-min; held-out pair accuracy {shown}", flush=True)
    return folder, cpu


def train_online(
    method: str, source: str, reward: Path, workdir: Path, env: dict[str, str], config: Path
) -> tuple[int, float, Path]:
    """`method` (grpo or rloo) on the stored prompts, rewarded by `reward`; (prompts, CPU seconds, model)."""
    folder = workdir / method / "run"
    cpu = run_child(
        [sys.executable, "-m", "llm_feedback_loop", "train", method, "--from-db", "--test-size", "0",
         "--reward", str(reward), "--model", source, "--output-dir", str(folder), "--config", str(config),
         "--no-register"],
        env, workdir / f"{method}-train.log",
    )  # fmt: skip
    export = folder / "data" / f"{method}.jsonl"
    prompts = sum(1 for _ in export.open(encoding="utf-8")) if export.is_file() else 0
    return prompts, cpu, folder / "model"


def line(name: str, rows: int, cpu_s: float, before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    gain = 100 * (after["task_score"] - before["task_score"])
    per_minute = gain / (cpu_s / 60) if cpu_s else float("nan")
    print(
        f"{name:<9}{rows:>6}{cpu_s / 60:>9.2f}{100 * before['task_score']:>8.1f} → {100 * after['task_score']:<6.1f}"
        f"{gain:>+8.1f}{per_minute:>+14.2f}{100 * after.get('coherence', nan):>11.1f}"
        f"{100 * after.get('correct', nan):>9.1f}",
        flush=True,
    )
    return {"rows": rows, "cpu_s": round(cpu_s, 1), "task_score": after, "gain_points": round(gain, 2),
            "gain_per_cpu_minute": round(per_minute, 3)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2", help="smollm2, tiny, or a model folder")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--answers", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of every process")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the run's files here")
    parser.add_argument(
        "--task", default="concise", help="concise, specific, bullets, plain, all (each built-in task), or MODULE:NAME"
    )
    parser.add_argument(
        "--pipelines", default=",".join(PIPELINES), help=f"which to run, comma-separated: {', '.join(PIPELINES)}"
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.pipelines.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(PIPELINES))
    if unknown or not chosen:
        parser.error(f"--pipelines: choose from {', '.join(PIPELINES)} (not {', '.join(unknown) or 'nothing'})")

    import torch

    from llm_feedback_loop.objectives.base import BUILTIN_OBJECTIVES, ObjectiveError, load_objective

    specs = list(BUILTIN_OBJECTIVES) if args.task == "all" else [args.task]
    try:
        tasks = [load_objective(spec) for spec in specs]
    except ObjectiveError as error:
        parser.error(f"--task: {error}")

    torch.set_num_threads(args.threads)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="bench-loop-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    source = prepare_model(args.model, workdir)
    results = {}
    for task in tasks:
        folder = workdir / task.name if len(tasks) > 1 else workdir
        folder.mkdir(parents=True, exist_ok=True)
        print(f"\n== task {task.name}", flush=True)
        results[task.name] = run_task(task, source, args, chosen, folder)
    if len(tasks) > 1:
        print(f"\n{'task':<10}" + "".join(f"{key + ' gain/CPU-min':>24}" for key in chosen))
        for name, result in results.items():
            print(f"{name:<10}" + "".join(
                f"{result[key]['gain_points']:>+12.1f} ({result[key]['gain_per_cpu_minute']:>+7.2f})    "
                if key in result else f"{'–':>24}" for key in chosen
            ))  # fmt: skip
    print(json.dumps(results if len(tasks) > 1 else results[tasks[0].name]))
    return 0


def run_task(task: Any, source: str, args: argparse.Namespace, chosen: list[str], workdir: Path) -> dict[str, Any]:
    """One round of each chosen pipeline on `task`, from the same sampled answers and judgements."""
    env = child_env(workdir, args.threads)
    tiny = args.model == "tiny"
    online_config = workdir / "online.yaml"
    online_config.write_text(ONLINE_CONFIG if not tiny else TINY_ONLINE_CONFIG)
    print(f"model {source}; {args.prompts} prompts x {args.answers} answers; files in {workdir}", flush=True)

    started = time.process_time()
    prompts = task.round_prompts(1, args.prompts)
    answers = sample_answers(source, prompts, args.answers, args.max_new_tokens)
    prefers = task.prefers if not tiny else harness_preference
    scores = [[prefers(p, a) for a in texts] for p, texts in zip(prompts, answers, strict=True)]
    before = held_out_metrics(task, source, args.max_new_tokens)
    shared_cpu = time.process_time() - started
    compliant = sum(map(sum, scores)) / sum(map(len, scores))
    print(
        f"shared: sampling, judging and the base's held-out answers took {shared_cpu / 60:.2f} CPU-min; "
        f"the annotator likes {100 * compliant:.0f}% of the sampled answers; "
        f"base task score {100 * before['task_score']:.1f}",
        flush=True,
    )

    # ours: the loop's API, export rules (its clearest 2 pairs a prompt) and `llmfl train dpo`'s own defaults
    # (its small-data recipe), as a round of `llmfl loop` trains
    with service_client(workdir / "ours.db", LOOP_PAIRS_PER_PROMPT) as client:
        store_ours(client, prompts, answers, scores)
        export_started = time.process_time()
        params = {"format": "conversational", "strategy": "best-vs-worst"}
        lines = client.get("/v1/export/dpo", params=params).text
        cpu = time.process_time() - export_started
    ours_export = workdir / "ours" / "dpo.jsonl"
    ours_export.parent.mkdir(parents=True, exist_ok=True)
    ours_export.write_text(lines, encoding="utf-8")
    ours_rows = sum(1 for _ in ours_export.open(encoding="utf-8"))
    ours_after = before  # no pairs: nothing to train
    results: dict[str, Any] = {}
    if ours_rows and "ours" in chosen:
        tiny_options = ["--max-steps", "4", "--batch-size", "4"] if tiny else []
        cpu += run_child(
            [sys.executable, "-m", "llm_feedback_loop", "train", "dpo", "--data", str(ours_export), "--model", source,
             "--output-dir", str(workdir / "ours" / "run"), "--no-register", *tiny_options],
            env, workdir / "ours-train.log",
        )  # fmt: skip
        ours_after = held_out_metrics(task, str(workdir / "ours" / "run" / "model"), args.max_new_tokens)
    if "ours" in chosen:
        results["ours"] = ("ours", ours_rows, cpu, ours_after)

    # online RL on the same stored feedback: a reward model, then each online method rewarded by it
    online = [name for name in chosen if name in ("grpo", "rloo")]
    if online:
        reward, reward_cpu = train_reward_model(source, workdir, env, online_config)
        for method in online:
            rows, method_cpu, model = train_online(method, source, reward, workdir, env, online_config)
            after = held_out_metrics(task, str(model), args.max_new_tokens)
            results[method] = (f"rm+{method}", rows, reward_cpu + method_cpu, after)

    if "original" in chosen:
        results["original"] = run_original(
            prompts, answers, scores, source, workdir, env, before, args.max_new_tokens, task
        )

    print(
        f"\n{'pipeline':<9}{'rows':>6}{'CPU-min':>9}{'task score (%)':>17}{'gain':>8}{'gain/CPU-min':>14}"
        f"{'coherence':>11}{'correct':>9}"
    )
    result: dict[str, Any] = {
        "task": task.name,
        "model": source,
        "prompts": args.prompts,
        "answers": args.answers,
        "shared_cpu_s": round(shared_cpu, 1),
        "base": before,
    }
    for key, (name, rows, cpu_s, after) in results.items():
        result[key] = line(name, rows, cpu_s, before, after)
    rates = {key: result[key]["gain_per_cpu_minute"] for key in results}
    print("\n" + "; ".join(f"{key}: {rate:+.2f}" for key, rate in rates.items())
          + " task-score points per CPU-minute of export and training.")  # fmt: skip
    return result


def run_original(
    prompts: list[str], answers: list[list[str]], scores: list[list[float]], source: str, workdir: Path,
    env: dict[str, str], before: dict[str, float], max_new_tokens: int, task: Any,
) -> tuple[str, int, float, dict[str, float]]:  # fmt: skip
    """The original's pipeline: its API, its export rules, its trainer's settings."""
    with service_client(workdir / "original.db") as client:
        store_original(client, prompts, answers, scores)
        export_started = time.process_time()
        lines = client.get("/rlhf-feedback/export").text
        export_cpu = time.process_time() - export_started
    original_export = workdir / "original" / "dpo.jsonl"
    original_export.parent.mkdir(parents=True, exist_ok=True)
    original_export.write_text(lines, encoding="utf-8")
    original_rows = sum(1 for row in lines.splitlines() if row.strip())
    original_cpu, original_after = export_cpu, before
    if original_rows:
        original_cpu += run_child(
            [sys.executable, str(ORIGINAL_TRAINER), "--mode", "dpo", "--model", source, "--data", str(original_export),
             "--output-dir", str(workdir / "original" / "run"), "--epochs", "1", "--batch-size", "8"],
            env, workdir / "original-train.log",
        )  # fmt: skip
        original_after = held_out_metrics(task, str(workdir / "original" / "run"), max_new_tokens)
    return "original", original_rows, original_cpu, original_after


if __name__ == "__main__":
    raise SystemExit(main())
