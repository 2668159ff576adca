"""The held-out evaluation's sampled answers: transformers' own temperature and top-p against ours.

Run from the repository root (about two minutes on 2 cores):

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_eval_sampling.py [--model FOLDER] [--task concise]

Draws the loop's default sampled answers to a task's held-out prompts (2 per prompt, 64 tokens, temperature
0.8, top-p 0.95, seed 0) twice with one loaded model: through transformers' TemperatureLogitsWarper and
TopPLogitsWarper (a sort of the whole vocabulary for every row at every step), and through the serving
engine's `temperature_and_nucleus` (the nucleus found among each row's 512 most likely tokens). Prints the
seconds of each and how many of the answers are the same (the nucleus is the same; a draw differs only where
float sums put a boundary token on the other side).
"""

from __future__ import annotations

import argparse
import time

import torch

from llm_feedback_loop.evaluation.answers import BATCH_ROWS, batched_answers, sample_answers
from llm_feedback_loop.models.loader import load_model, resolve_source
from llm_feedback_loop.objectives.base import load_objective

SAMPLES, TOKENS, TEMPERATURE, TOP_P, SEED = 2, 64, 0.8, 0.95, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder (default: the cached SmolLM2-135M-Instruct folder)")
    parser.add_argument("--task", default="concise", help="whose held-out prompts (default: concise)")
    args = parser.parse_args()
    loaded = load_model(args.model or resolve_source(None), device="cpu")
    prompts = load_objective(args.task).eval_prompts
    conversations = [[{"role": "user", "content": prompt}] for prompt in prompts]
    print(
        f"{len(prompts)} held-out prompts of {args.task}, {SAMPLES} samples each, {TOKENS} tokens, "
        f"{torch.get_num_threads()} torch threads"
    )

    warm = {"max_new_tokens": 8, "do_sample": False}  # the first generate call pays one-off costs: not timed
    batched_answers(loaded.model, loaded.tokenizer, conversations[:BATCH_ROWS], BATCH_ROWS, 1, warm)
    start = time.perf_counter()
    theirs_options = {"max_new_tokens": TOKENS, "do_sample": True, "temperature": TEMPERATURE, "top_p": TOP_P}
    theirs = batched_answers(
        loaded.model,
        loaded.tokenizer,
        conversations,
        max(1, BATCH_ROWS // SAMPLES),
        SAMPLES,
        theirs_options | {"top_k": 0},
        SEED,
    )
    theirs_s = time.perf_counter() - start

    start = time.perf_counter()
    ours = sample_answers(
        loaded.model,
        loaded.tokenizer,
        conversations,
        SAMPLES,
        max_new_tokens=TOKENS,
        temperature=TEMPERATURE,
        top_p=TOP_P,
        seed=SEED,
    )
    ours_s = time.perf_counter() - start

    pairs = [(a, b) for mine, others in zip(ours, theirs, strict=True) for a, b in zip(mine, others, strict=True)]
    same = sum(a == b for a, b in pairs)
    print(f"transformers' temperature and top-p: {theirs_s:6.1f} s")
    print(f"temperature_and_nucleus:             {ours_s:6.1f} s   ({theirs_s / ours_s:.2f}x)")
    print(f"the same answer: {same} of {len(pairs)}")


if __name__ == "__main__":
    main()
