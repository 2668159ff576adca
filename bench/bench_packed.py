"""Linear layers packed for oneDNN (`models/packed.py`) against the plain ones (MKL's sgemm), on SmolLM2's shapes.

Run from the repository root (about three minutes on 2 cores):

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_packed.py [--model FOLDER] [--task concise]

Prints, plain against packed:
  1. one product of each of SmolLM2-135M's linear shapes with 1, 8 and 32 rows (the best of 3 rounds of repeats);
  2. plain `generate` of one prompt, 64 greedy tokens (what a lone request to the server runs; best of 3);
  3. the loop's held-out evaluation: greedy answers to the task's held-out prompts (one batch) and 2 sampled
     answers to each, as `evaluation/answers.py` draws them, and how many answers are the same;
and the process's resident memory before and after packing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import psutil
import torch

from llm_feedback_loop.evaluation.answers import BATCH_ROWS, generate_answers, sample_answers
from llm_feedback_loop.models.loader import load_model, resolve_source
from llm_feedback_loop.models.packed import pack_linear_layers, packed_forward
from llm_feedback_loop.objectives.base import load_objective

SHAPES = [(576, 576), (576, 192), (576, 1536), (1536, 576), (576, 49152)]  # (in, out): SmolLM2-135M's linears


def best_ms(work: Callable[[], Any], repeats: int, rounds: int = 3) -> float:
    work()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            work()
        times.append((time.perf_counter() - start) / repeats * 1000)
    return min(times)


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def products() -> None:
    print("1. one product, ms (plain MKL sgemm -> packed oneDNN)")
    for inputs, outputs in SHAPES:
        weight = torch.randn(outputs, inputs)
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, None)
        repeats = 20 if outputs > 10_000 else 300
        cells = []
        for rows in (1, 8, 32):
            x = torch.randn(rows, inputs)
            plain = best_ms(lambda x=x, w=weight: torch.nn.functional.linear(x, w), repeats)
            ours = best_ms(lambda x=x, w=packed: packed_forward(w, None, x), repeats)
            cells.append(f"{rows:>2} rows {plain:7.3f} -> {ours:7.3f} ({plain / ours:.2f}x)")
        print(f"  {inputs:>5} -> {outputs:<6} " + "   ".join(cells), flush=True)


def lone_generate(model: Any, tokenizer: Any) -> tuple[float, list[int]]:
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What should I know about volcanoes?"}], add_generation_prompt=True, tokenize=False
    )
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    found: list[int] = []

    def run() -> None:
        with torch.no_grad():
            out = model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=64, min_new_tokens=64, do_sample=False
            )
        found[:] = out[0, ids.shape[1] :].tolist()

    return best_ms(run, 1) / 1000, found


def held_out(model: Any, tokenizer: Any, prompts: list[str]) -> tuple[float, float, list[str], list[list[str]]]:
    conversations = [[{"role": "user", "content": prompt}] for prompt in prompts]
    start = time.perf_counter()
    greedy = generate_answers(model, tokenizer, conversations, 64, BATCH_ROWS)
    greedy_s = time.perf_counter() - start
    start = time.perf_counter()
    sampled = sample_answers(model, tokenizer, conversations, 2, max_new_tokens=64, seed=0)
    return greedy_s, time.perf_counter() - start, greedy, sampled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder (default: the cached SmolLM2-135M-Instruct folder)")
    parser.add_argument("--task", default="concise", help="whose held-out prompts (default: concise)")
    args = parser.parse_args()
    print(f"{torch.get_num_threads()} torch threads; {torch.__version__}")
    products()

    loaded = load_model(args.model or resolve_source(None), device="cpu")
    model, tokenizer = loaded.model, loaded.tokenizer
    prompts = load_objective(args.task).eval_prompts
    figures: dict[str, Any] = {}
    for name in ("plain", "packed"):
        if name == "packed":
            before = rss_mb()
            count = pack_linear_layers(model)
            print(f"packed {count} linear layers; resident memory {before:.0f} -> {rss_mb():.0f} MB")
        lone_s, tokens = lone_generate(model, tokenizer)
        greedy_s, sampled_s, greedy, sampled = held_out(model, tokenizer, prompts)
        figures[name] = (lone_s, tokens, greedy_s, sampled_s, greedy, sampled)
    plain, packed = figures["plain"], figures["packed"]
    print("2. plain generate, one prompt, 64 greedy tokens")
    same = plain[1] == packed[1]
    print(f"  plain {plain[0]:.2f} s -> packed {packed[0]:.2f} s ({plain[0] / packed[0]:.2f}x); same tokens: {same}")
    print(f"3. held-out evaluation of {args.task}: {len(prompts)} prompts, 64 tokens")
    same_greedy = sum(a == b for a, b in zip(plain[4], packed[4], strict=True))
    pairs = [(a, b) for x, y in zip(plain[5], packed[5], strict=True) for a, b in zip(x, y, strict=True)]
    same_sampled = sum(a == b for a, b in pairs)
    for what, index, alike, total in (
        ("greedy answers", 2, same_greedy, len(prompts)),
        ("2 sampled each", 3, same_sampled, len(pairs)),
    ):
        ratio = plain[index] / packed[index]
        print(
            f"  {what}  plain {plain[index]:6.1f} s -> packed {packed[index]:6.1f} s ({ratio:.2f}x); "
            f"the same answer: {alike} of {total}"
        )


if __name__ == "__main__":
    main()
