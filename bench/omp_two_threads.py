"""Why generation slows down once a second thread has run the model (CPU, PyTorch's GNU OpenMP).

Run from the repository root (about a minute):

    OMP_NUM_THREADS=2 .venv/bin/python bench/omp_two_threads.py [--model FOLDER]

Times greedy `generate` of 64 tokens (ms per token and the process's CPU use) in the main thread, in
short-lived threads, and in the main thread while another thread that has run the model is still alive.
On a 2-core machine: ~33 ms/token at ~199% CPU while only one thread has run torch work, ~56 ms/token at
~125% CPU as long as a second one is alive, back to ~33 ms/token once it has exited. libgomp gives every
thread that starts parallel work its own thread team and, once the threads it manages outnumber the CPUs,
stops spinning between parallel regions, so each of a small model's many short regions waits for a wake-up.

Consequence for a server: all torch work should stay on one long-lived thread. A second one kept alive
(an `asyncio.to_thread` executor thread that ran `generate`, or an HTTP handler thread per connection) beside
the continuous-batching manager's own thread slows every later request down, batched ones included.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

TOKENS = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder (default: the cached SmolLM2-135M-Instruct folder)")
    args = parser.parse_args()
    if args.model:
        folder = args.model
    else:
        from llm_feedback_loop.models.loader import resolve_source

        folder = resolve_source(None)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    messages = [{"role": "user", "content": "Write a short poem about the sea."}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)[
        "input_ids"
    ]

    def generate() -> None:
        with torch.no_grad():
            model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=TOKENS,
                min_new_tokens=TOKENS,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )

    def in_new_thread() -> None:
        thread = threading.Thread(target=generate)
        thread.start()
        thread.join()

    def measure(label: str, run: Callable[[], None], repeats: int = 3) -> None:
        run()  # warm
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            run()
        wall = (time.perf_counter() - started) / repeats
        used = (time.process_time() - cpu) / repeats
        print(f"{label:<50} {wall * 1000 / TOKENS:6.1f} ms/token   CPU {100 * used / wall:4.0f}%", flush=True)

    backend = next(line for line in torch.__config__.parallel_info().splitlines() if "parallel backend" in line)
    print(f"torch threads {torch.get_num_threads()}, {backend.strip()}")
    measure("main thread", generate)
    measure("a short-lived thread per call", in_new_thread)
    measure("main thread, after those threads exited", generate)
    release, ready = threading.Event(), threading.Event()

    def stay_alive() -> None:
        generate()
        ready.set()
        release.wait()

    other = threading.Thread(target=stay_alive)
    other.start()
    ready.wait()
    measure("main thread, while another torch thread is alive", generate)
    release.set()
    other.join()
    measure("main thread, after it exited", generate)


if __name__ == "__main__":
    main()
