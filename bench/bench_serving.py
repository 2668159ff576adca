"""Benchmark of the inference server (`llmfl serve-model`) against two one-request-at-a-time servers.

Run from the repository root:

    .venv/bin/python bench/bench_serving.py                  # 1, 8 and 32 clients, 30 s each (~8-10 min)
    .venv/bin/python bench/bench_serving.py --quick          # 1 and 8 clients, 15 s each (~3 min)
    .venv/bin/python bench/bench_serving.py --model /tmp/tinybench   # another model folder
    .venv/bin/python bench/bench_serving.py --servers ours,baseline --clients 8 --seconds 20 --threads 1

Three servers answer the same OpenAI-style `POST /v1/chat/completions`, one after the other, each started
as a subprocess with the same OMP_NUM_THREADS (`--threads`, default 2 = the cores of the machine it was
written on) and HF_HUB_OFFLINE=1:

  ours          `llmfl serve-model --model FOLDER` (continuous batching in-process)
  ours-seed     the same server, its clients sending `seed: 0` beside `temperature: 0` (what many SDK users
                send; a seed changes nothing in a greedy answer, and must not keep it out of the batch)
  baseline      a minimal server in this file: http.server threads hand each request to ONE generation
                thread that runs plain `model.generate`, one request at a time, as the original project's
                Flask inference_server.py served (non-streaming; returns usage.completion_tokens).
                `--baseline-mode lock` instead has each request's thread call generate under a global lock:
                also one at a time, but ~40% slower with 8 clients: once several threads that ran the
                model are alive, OpenMP stops spinning between parallel regions (see bench/omp_two_threads.py)
  baseline-packed  the same baseline with its linear layers packed for oneDNN as our engine packs them
                (`models/packed.py`): our server against it is what batching adds, the kernels apart
  transformers  `transformers serve FOLDER` with its defaults (no --continuous-batching)

For each concurrency level, N closed-loop clients (one keep-alive HTTP/1.1 connection each; a client sends
its next request as soon as the previous answer arrives) cycle through a fixed list of varied short chat
prompts (client k starts at prompt 3k), max_tokens 64, temperature 0 (greedy, so every server should give
the same answers), for `--seconds`; then no new request is sent and the requests in flight are waited for.

  tok/s         sum of usage.completion_tokens of every request / wall time from the first request sent to
                the last answer received (the drain included: exact for a one-at-a-time server; slightly
                conservative for a batching one, whose batch shrinks while it drains)
  p50/p99       request latency over every request of the level (nearest rank)
  ms/tok p50    median of latency / completion_tokens (length-independent)
  errors        non-200 answers, connection errors, answers without usage
  peak RSS      VmHWM of the server process (and any children) at the end of the level: the peak so far
  srv CPU       the server's CPU time / wall time (100% = one core); well below 100% x threads while
                it is busy is the sign of that OpenMP slow-down. `other CPU` is the rest of the machine's
                busy time minus server and client, a sign of interference from other processes

Each server is warmed up with 2 sequential and 2 concurrent requests before measuring. Before each level the
script waits (up to 90 s) for the machine to be idle; a level during which other processes used more than 15% of
a core is measured once more (`--repeat-noisy`) and the quieter measurement kept; a row still marked `*` was
measured with interference. Printed figures are also written as JSON to bench/results/serving.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench_common import HOST, free_port, percentile, verdict

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "serving.json"
VENV_BIN = Path(sys.executable).parent
MAX_TOKENS = 64
SERVERS = ("ours", "ours-seed", "baseline", "baseline-packed", "transformers")
BASELINES = ("baseline", "baseline-packed")  # one request at a time with plain `generate`
SEEDED = "ours-seed"  # our server again, its clients sending `seed: 0` with `temperature: 0`, as many SDK users do

# A level during which other processes used more CPU than this (% of one core) is measured again.
NOISY_OTHER_CPU_PERCENT = 15.0

TARGET_CLIENTS = 8
TARGET_THROUGHPUT_RATIO = 4.0  # ours / baseline tokens per second at TARGET_CLIENTS
# single-client latency: ours no worse than the baseline (ratio <= 1)

# Varied short chat prompts: answers from a few tokens to the full 64.
PROMPTS = [
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "Explain what a hash table is in two sentences.",
    "Give me three tips for sleeping better.",
    "Translate 'good morning, how are you?' into Spanish.",
    "What is 17 times 23?",
    "Summarize the plot of Romeo and Juliet.",
    "Write a Python function that reverses a string.",
    "Why is the sky blue?",
    "Name five fruits that are red.",
    "What does HTTP stand for?",
    "Describe a cat to someone who has never seen one.",
    "How do I boil an egg?",
    "List the planets of the solar system in order.",
    "What is the difference between weather and climate?",
    "Tell me a joke about programmers.",
]


# --------------------------------------------------------------------------------------------------
# The baseline server: one request at a time with plain model.generate (run as a subprocess)


CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def serve_baseline(model_path: str, port: int, mode: str = "worker", packed: bool = False) -> None:
    """The original inference server's way: load once, answer each request with `model.generate`, one at a time.

    mode "worker": one generation thread runs every request; "lock": each connection's thread calls generate
    itself under a global lock (as a threaded Flask app with a lock would).
    """
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHATML
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.eval()
    if packed:  # the linear layers our engine multiplies with (models/packed.py): what batching adds beside them
        from llm_feedback_loop.models.packed import pack_linear_layers

        # On a thread that ends, as our engine packs: a thread that ran torch and stays alive (this one, which
        # serves HTTP) would slow every forward pass of the generation thread (bench/omp_two_threads.py).
        counted: list[int] = []
        packer = threading.Thread(target=lambda: counted.append(pack_linear_layers(model)))
        packer.start()
        packer.join()
        print(f"baseline: {counted[0] if counted else 0} linear layers packed for oneDNN", flush=True)
    name = Path(model_path).name
    # "worker" (the default): one thread runs every generation, one at a time (HTTP threads hand their request
    # over and wait). "lock" serializes too, but generation then runs in the connections' own threads, and with
    # several such threads alive OpenMP stops spinning between parallel regions (bench/omp_two_threads.py):
    # measured with 8 clients, ~130% CPU of 200% and ~40% less throughput, a penalty unrelated to batching,
    # so it is not the default.
    lock = threading.Lock()
    jobs: queue.Queue[tuple[dict[str, Any], Future[dict[str, Any]]]] = queue.Queue()

    def worker() -> None:
        while True:
            body, future = jobs.get()
            try:
                future.set_result(generate(body))
            except Exception as error:
                future.set_exception(error)

    def generate(body: dict[str, Any]) -> dict[str, Any]:
        inputs = tokenizer.apply_chat_template(
            body["messages"], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        temperature = 1.0 if body.get("temperature") is None else float(body["temperature"])
        sampling: dict[str, Any] = (
            {"do_sample": False}
            if temperature <= 0
            else {"do_sample": True, "temperature": temperature, "top_p": float(body.get("top_p") or 1.0)}
        )
        prompt_tokens = int(inputs["input_ids"].shape[1])
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                max_new_tokens=int(body.get("max_tokens") or 256),
                pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )
        generated = output[0][prompt_tokens:]
        text = tokenizer.decode(generated, skip_special_tokens=True)
        finish = "length" if len(generated) >= int(body.get("max_tokens") or 256) else "stop"
        return {
            "id": f"chatcmpl-{time.monotonic_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(generated),
                "total_tokens": prompt_tokens + len(generated),
            },
        }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            head = (
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            self.wfile.write(head + data)  # one write: no Nagle/delayed-ACK stall between head and body

        def do_GET(self) -> None:
            if self.path == "/health":
                self.reply(200, {"status": "ok"})
            elif self.path == "/v1/models":
                self.reply(200, {"object": "list", "data": [{"id": name, "object": "model"}]})
            else:
                self.reply(404, {"detail": "not found"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.path != "/v1/chat/completions":
                self.reply(404, {"detail": "not found"})
                return
            try:
                if mode == "lock":
                    with lock:
                        answer = generate(body)
                else:
                    future: Future[dict[str, Any]] = Future()
                    jobs.put((body, future))
                    answer = future.result()
                self.reply(200, answer)
            except Exception as error:
                self.reply(500, {"message": f"{type(error).__name__}: {error}"})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    threading.Thread(target=worker, daemon=True).start()
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((HOST, port), Handler)
    signal.signal(signal.SIGINT, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    server.server_close()


# --------------------------------------------------------------------------------------------------
# Helpers


def server_command(kind: str, model: str, port: int, baseline_mode: str = "worker") -> list[str]:
    if kind in ("ours", SEEDED):
        return [str(VENV_BIN / "llmfl"), "serve-model", "--model", model, "--port", str(port), "--log-level", "warning"]
    if kind in BASELINES:
        here = str(Path(__file__).resolve())
        packed = ["--baseline-packed"] if kind == "baseline-packed" else []
        return [
            sys.executable, here, "--serve-baseline", model, "--port", str(port), "--baseline-mode", baseline_mode,
            *packed,
        ]  # fmt: skip
    if kind == "transformers":
        return [str(VENV_BIN / "transformers"), "serve", model, "--host", HOST, "--port", str(port)]
    raise ValueError(kind)


def server_env(threads: int, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": f"sqlite:///{workdir / 'serving.db'}",
            # This measures generation, not keys: our server on 127.0.0.1 without authentication, as the
            # one-at-a-time servers it is compared with (the ingest benchmark measures the cost of keys).
            "AUTH_REQUIRED": "false",
        }
    )
    return env


def get_json(port: int, path: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as response:
        return json.loads(response.read())


def wait_until_ready(port: int, server: subprocess.Popen[bytes], log_path: Path, timeout: float = 300.0) -> float:
    started = time.perf_counter()
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
            if get_json(port, "/health", timeout=2).get("status") == "ok":
                return time.perf_counter() - started
        time.sleep(0.2)
    raise RuntimeError(f"the server was not ready within {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


def stop_server(server: subprocess.Popen[bytes], timeout: float = 60.0) -> int | None:
    if server.poll() is not None:
        return server.returncode
    server.send_signal(signal.SIGINT)
    try:
        return server.wait(timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        return None


def process_tree(pid: int) -> list[Any]:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def peak_rss_mb(pid: int) -> float:
    """Sum of VmHWM (peak resident set) over the process and its children, in MiB."""
    total = 0
    for process in process_tree(pid):
        try:
            with open(f"/proc/{process.pid}/status", "rb") as status:
                for line in status:
                    if line.startswith(b"VmHWM:"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total / 1024


def rss_mb(pid: int) -> float:
    total = 0
    for process in process_tree(pid):
        with contextlib.suppress(Exception):
            total += process.memory_info().rss
    return total / 2**20


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for process in process_tree(pid):
        with contextlib.suppress(Exception):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def machine_busy_seconds() -> float:
    import psutil

    times = psutil.cpu_times()  # guest time is already inside user time on Linux
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))


# --------------------------------------------------------------------------------------------------
# The client: closed loop on raw asyncio streams, one keep-alive connection per client


class HttpError(Exception):
    pass


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server wants to close) of one HTTP/1.1 response (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length: int | None = None
    chunked = False
    close = head.startswith(b"HTTP/1.0")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value == b"close"
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return status, b"".join(parts), close
    if length is None:
        return status, await reader.read(), True
    return status, (await reader.readexactly(length) if length else b""), close


@dataclass
class Sample:
    prompt: int
    latency_s: float
    completion_tokens: int
    sent_at: float
    done_at: float


@dataclass
class ClientLog:
    samples: list[Sample] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None

    def error(self, message: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = message


def chat_request(port: int, model: str, prompt: str, max_tokens: int, seed: int | None = None) -> bytes:
    fields = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}
    body = json.dumps(fields | {"temperature": 0} | ({"seed": seed} if seed is not None else {})).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def client_loop(
    port: int,
    model: str,
    first_prompt: int,
    deadline: float,
    max_tokens: int,
    log: ClientLog,
    limit: int | None,
    seed: int | None = None,
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    index = first_prompt
    sent = 0
    while time.perf_counter() < deadline and (limit is None or sent < limit):
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection(HOST, port, limit=2**20)
            except OSError as error:
                log.error(f"connect: {error}")
                await asyncio.sleep(0.1)
                continue
        assert reader is not None
        prompt = index % len(PROMPTS)
        index += 1
        sent += 1
        started = time.perf_counter()
        try:
            writer.write(chat_request(port, model, PROMPTS[prompt], max_tokens, seed))
            status, body, close = await read_response(reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, HttpError, ValueError) as error:
            log.error(f"{type(error).__name__}: {error}")
            writer.close()
            reader = writer = None
            continue
        finished = time.perf_counter()
        if status != 200:
            log.error(f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}")
        else:
            try:
                tokens = int(json.loads(body)["usage"]["completion_tokens"])
            except (ValueError, KeyError, TypeError) as error:
                log.error(f"no usage in answer ({error}): {body[:300].decode('utf-8', 'replace')}")
            else:
                log.samples.append(Sample(prompt, finished - started, tokens, started, finished))
        if close:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def drive(
    port: int,
    model: str,
    clients: int,
    seconds: float,
    max_tokens: int,
    limit: int | None = None,
    seed: int | None = None,
) -> list[ClientLog]:
    deadline = time.perf_counter() + seconds
    logs = [ClientLog() for _ in range(clients)]
    await asyncio.gather(
        *(client_loop(port, model, 3 * i, deadline, max_tokens, logs[i], limit, seed) for i in range(clients))
    )
    return logs


def run_loop(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


# --------------------------------------------------------------------------------------------------
# Measuring


@dataclass
class LevelResult:
    server: str
    clients: int
    send_s: float
    requests: int
    completion_tokens: int
    wall_s: float
    tokens_per_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    ms_per_token_p50: float
    errors: int
    first_error: str | None
    peak_rss_mb: float
    server_cpu_percent: float
    client_cpu_percent: float
    other_cpu_percent: float
    tokens_by_prompt: dict[int, list[int]]
    latency_ms_by_prompt: dict[int, list[float]]


@dataclass
class ServerRun:
    server: str
    command: list[str]
    ready_s: float | None = None
    served_model: str | None = None
    rss_after_load_mb: float | None = None
    rss_after_warmup_mb: float | None = None
    levels: list[LevelResult] = field(default_factory=list)
    noisy_levels: list[LevelResult] = field(default_factory=list)  # measurements discarded for interference
    exit_code: int | None = None
    shutdown_s: float | None = None
    failure: str | None = None


def measure_level(kind: str, pid: int, port: int, model: str, clients: int, seconds: float) -> LevelResult:
    cpu_before = cpu_seconds(pid)
    busy_before = machine_busy_seconds()
    client_before = time.process_time()
    started = time.perf_counter()
    logs = run_loop(drive(port, model, clients, seconds, MAX_TOKENS, seed=0 if kind == SEEDED else None))
    samples = [s for log in logs for s in log.samples]
    first_sent = min((s.sent_at for s in samples), default=started)
    last_done = max((s.done_at for s in samples), default=time.perf_counter())
    load_s = time.perf_counter() - started
    server_cpu = cpu_seconds(pid) - cpu_before
    client_cpu = time.process_time() - client_before
    busy = machine_busy_seconds() - busy_before
    wall = max(last_done - first_sent, 1e-9)
    tokens = sum(s.completion_tokens for s in samples)
    latencies = sorted(s.latency_s * 1000 for s in samples)
    per_token = sorted(s.latency_s * 1000 / s.completion_tokens for s in samples if s.completion_tokens)
    by_prompt_tokens: dict[int, list[int]] = {}
    by_prompt_latency: dict[int, list[float]] = {}
    for s in samples:
        by_prompt_tokens.setdefault(s.prompt, []).append(s.completion_tokens)
        by_prompt_latency.setdefault(s.prompt, []).append(round(s.latency_s * 1000, 1))
    return LevelResult(
        server=kind,
        clients=clients,
        send_s=seconds,
        requests=len(samples),
        completion_tokens=tokens,
        wall_s=wall,
        tokens_per_s=tokens / wall,
        requests_per_s=len(samples) / wall,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        max_ms=latencies[-1] if latencies else float("nan"),
        ms_per_token_p50=percentile(per_token, 50),
        errors=sum(log.errors for log in logs),
        first_error=next((log.first_error for log in logs if log.first_error), None),
        peak_rss_mb=peak_rss_mb(pid),
        server_cpu_percent=100 * server_cpu / load_s,
        client_cpu_percent=100 * client_cpu / load_s,
        other_cpu_percent=max(0.0, 100 * (busy - server_cpu - client_cpu) / load_s),
        tokens_by_prompt={k: sorted(set(v)) for k, v in sorted(by_prompt_tokens.items())},
        latency_ms_by_prompt=dict(sorted(by_prompt_latency.items())),
    )


def warm_up(port: int, model: str) -> None:
    for logs in (
        run_loop(drive(port, model, 1, 600, MAX_TOKENS, limit=2)),  # two sequential requests
        run_loop(drive(port, model, 2, 600, MAX_TOKENS, limit=1)),  # two at once
    ):
        errors = [log.first_error for log in logs if log.errors]
        if errors:
            raise RuntimeError(f"warm-up request failed: {errors[0]}")


def wait_for_quiet(max_wait_s: float = 90.0, busy_percent: float = 20.0) -> float:
    """Wait (up to max_wait_s) until the machine's CPUs are idle but for busy_percent of one core; the time waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < max_wait_s:
        before = machine_busy_seconds()
        time.sleep(1.0)
        if 100 * (machine_busy_seconds() - before) <= busy_percent:
            break
    waited = time.perf_counter() - started
    return waited if waited > 2.0 else 0.0


def bench_server(
    kind: str,
    model: str,
    levels: list[int],
    seconds: float,
    threads: int,
    workdir: Path,
    repeat_noisy: int,
    baseline_mode: str,
) -> ServerRun:
    port = free_port()
    command = server_command(kind, model, port, baseline_mode)
    run = ServerRun(server=kind, command=command)
    log_path = workdir / f"{kind}.log"
    print(f"\n== {kind}: {' '.join(command)}", flush=True)
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, env=server_env(threads, workdir), cwd=workdir, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            run.ready_s = wait_until_ready(port, server, log_path)
            run.served_model = get_json(port, "/v1/models")["data"][0]["id"]
            run.rss_after_load_mb = rss_mb(server.pid)
            warm_up(port, run.served_model)
            run.rss_after_warmup_mb = rss_mb(server.pid)
            print(
                f"   ready in {run.ready_s:.1f} s, serves {run.served_model!r}, RSS {run.rss_after_load_mb:.0f} MiB "
                f"after load, {run.rss_after_warmup_mb:.0f} MiB after warm-up",
                flush=True,
            )
            for clients in levels:
                result = None
                for attempt in range(1 + repeat_noisy):
                    waited = wait_for_quiet()
                    if waited:
                        print(f"     (waited {waited:.0f} s for other processes to leave the CPU)", flush=True)
                    attempt_result = measure_level(kind, server.pid, port, run.served_model, clients, seconds)
                    print("   " + level_line(attempt_result), flush=True)
                    if attempt_result.first_error:
                        print(f"     first error: {attempt_result.first_error}", flush=True)
                    if server.poll() is not None:
                        raise RuntimeError(f"the server exited with {server.returncode}")
                    if result is None or attempt_result.other_cpu_percent < result.other_cpu_percent:
                        if result is not None:
                            run.noisy_levels.append(result)
                        result = attempt_result
                    else:
                        run.noisy_levels.append(attempt_result)
                    if attempt_result.other_cpu_percent <= NOISY_OTHER_CPU_PERCENT:
                        break
                    print(
                        f"     noisy: other processes used {attempt_result.other_cpu_percent:.0f}% CPU during the level"
                        + ("; measuring it again" if attempt < repeat_noisy else ""),
                        flush=True,
                    )
                assert result is not None
                run.levels.append(result)
        except Exception as error:
            run.failure = f"{type(error).__name__}: {error}"
            print(f"   FAILED: {run.failure}\n   log: {log_path.read_text()[-2000:]}", flush=True)
        finally:
            stopping = time.perf_counter()
            run.exit_code = stop_server(server)
            run.shutdown_s = time.perf_counter() - stopping
            print(f"   stopped in {run.shutdown_s:.1f} s, exit code {run.exit_code}", flush=True)
    return run


# --------------------------------------------------------------------------------------------------
# Reporting

HEADER = (
    f"{'server':<13}{'clients':>7}{'reqs':>6}{'tokens':>8}{'wall s':>8}{'tok/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
    f"{'ms/tok':>8}{'errors':>7}{'peak RSS':>10}{'srv CPU':>9}{'other CPU':>10}"
)


def level_line(r: LevelResult) -> str:
    return (
        f"{r.server:<13}{r.clients:>7}{r.requests:>6}{r.completion_tokens:>8}{r.wall_s:>8.1f}{r.tokens_per_s:>8.1f}"
        f"{r.p50_ms:>9.0f}{r.p99_ms:>9.0f}{r.ms_per_token_p50:>8.1f}{r.errors:>7}{r.peak_rss_mb:>7.0f} MiB"
        f"{r.server_cpu_percent:>8.0f}%{r.other_cpu_percent:>9.0f}%"
        + (" *" if r.other_cpu_percent > NOISY_OTHER_CPU_PERCENT else "")
    )


def find(runs: list[ServerRun], server: str, clients: int) -> LevelResult | None:
    for run in runs:
        if run.server == server:
            for level in run.levels:
                if level.clients == clients:
                    return level
    return None


def matched_latency_ratio(ours: LevelResult, other: LevelResult) -> tuple[float, int]:
    """Median over the prompts both answered of (our median latency / their median latency)."""
    ratios = [
        statistics.median(ours.latency_ms_by_prompt[p]) / statistics.median(other.latency_ms_by_prompt[p])
        for p in ours.latency_ms_by_prompt
        if p in other.latency_ms_by_prompt
    ]
    return (statistics.median(ratios) if ratios else float("nan")), len(ratios)


def differing_answers(a: LevelResult, b: LevelResult) -> tuple[int, int]:
    """Prompts whose completion token counts differ between two levels (greedy: they should not)."""
    common = [p for p in a.tokens_by_prompt if p in b.tokens_by_prompt]
    return sum(a.tokens_by_prompt[p] != b.tokens_by_prompt[p] for p in common), len(common)


def summarize(runs: list[ServerRun], levels: list[int]) -> dict[str, Any]:
    print("\n== Results (closed loop, max_tokens 64, temperature 0)")
    print(HEADER)
    for clients in levels:
        for run in runs:
            result = find([run], run.server, clients)
            if result:
                print(level_line(result))
    summary: dict[str, Any] = {}
    print()
    for clients in levels:
        for name in ("ours", SEEDED):
            ours = find(runs, name, clients)
            for other_name in (*BASELINES, "transformers"):
                other = find(runs, other_name, clients)
                if ours and other and other.tokens_per_s > 0:
                    ratio = ours.tokens_per_s / other.tokens_per_s
                    summary[f"throughput_ratio_{name}_{other_name}_{clients}"] = ratio
                    target = ""
                    if other_name == "baseline" and clients == TARGET_CLIENTS:
                        met = verdict(ratio >= TARGET_THROUGHPUT_RATIO)
                        target = f"   target >= {TARGET_THROUGHPUT_RATIO:g}x  {met}"
                    print(f"  tok/s {name:<9} / {other_name:<12} at {clients:>2} clients   {ratio:6.2f}x{target}")
    for name in ("ours", SEEDED):
        ours1, base1 = find(runs, name, 1), find(runs, "baseline", 1)
        if ours1 and base1:
            key = "" if name == "ours" else "_seeded"
            p50_ratio = ours1.p50_ms / base1.p50_ms
            matched, count = matched_latency_ratio(ours1, base1)
            per_token_ratio = ours1.ms_per_token_p50 / base1.ms_per_token_p50
            summary |= {
                f"latency_ratio_p50_1{key}": p50_ratio,
                f"latency_ratio_matched_1{key}": matched,
                f"latency_ratio_ms_per_token_1{key}": per_token_ratio,
            }
            print(f"  1-client latency {name} / baseline: p50 {p50_ratio:.2f}x, ms/token p50 {per_token_ratio:.2f}x,")
            print(
                f"    per-prompt median over {count} prompts answered by both {matched:.2f}x"
                f"   target <= 1.00x  {verdict(matched <= 1.0)}"
            )
    for run in runs:
        if run.server in BASELINES:
            continue
        for level in run.levels:
            base = find(runs, "baseline", level.clients) or find(runs, "baseline", 1)
            if base:
                differ, common = differing_answers(level, base)
                if differ:
                    print(
                        f"  note: {run.server} at {level.clients} clients: {differ} of {common} prompts got answers of "
                        "another length than the baseline's (greedy decoding; batched numerics can differ)"
                    )
    for run in runs:
        if run.failure:
            print(f"  {run.server} FAILED: {run.failure}")
    return summary


# --------------------------------------------------------------------------------------------------


def default_model() -> str:
    from llm_feedback_loop.models.loader import resolve_source

    return resolve_source(None)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 and 8 clients, 15 s each (about 3 minutes)")
    parser.add_argument("--model", help="model folder (default: the cached SmolLM2-135M-Instruct folder)")
    parser.add_argument("--clients", help="comma-separated concurrency levels (default 1,8,32; 1,8 with --quick)")
    parser.add_argument("--seconds", type=float, help="time each level sends requests (default 30; 15 with --quick)")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of every server (default 2)")
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"which to run (default {','.join(SERVERS)})")
    parser.add_argument(
        "--repeat-noisy",
        type=int,
        default=1,
        help=f"measure a level again (at most this often) when other processes used > {NOISY_OTHER_CPU_PERCENT:g}%%"
        " of a core during it (default 1)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    parser.add_argument(
        "--baseline-mode",
        choices=("worker", "lock"),
        default="worker",
        help="baseline: one generation thread (worker, default) or each request's thread under a global lock",
    )
    parser.add_argument("--serve-baseline", metavar="MODEL", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-packed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=5005, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_baseline:
        serve_baseline(args.serve_baseline, args.port, args.baseline_mode, args.baseline_packed)
        return 0
    os.environ["HF_HUB_OFFLINE"] = "1"
    levels = [int(c) for c in (args.clients or ("1,8" if args.quick else "1,8,32")).split(",")]
    seconds = args.seconds or (15.0 if args.quick else 30.0)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(servers) - set(SERVERS)
    if unknown:
        raise SystemExit(f"unknown servers {sorted(unknown)}; choose from {', '.join(SERVERS)}")
    model = str(Path(args.model).resolve()) if args.model else default_model()

    import torch
    import transformers

    print(
        f"model {model}\nservers {', '.join(servers)}; clients {levels}; {seconds:g} s of requests per level; "
        f"OMP_NUM_THREADS={args.threads} for every server; baseline mode {args.baseline_mode}\n{os.cpu_count()} CPUs; "
        "load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\ntorch {torch.__version__}, transformers "
        f"{transformers.__version__}, Python {platform.python_version()}",
        flush=True,
    )
    started = time.perf_counter()
    runs: list[ServerRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        for kind in servers:
            workdir = Path(tmp) / kind
            workdir.mkdir()
            runs.append(
                bench_server(kind, model, levels, seconds, args.threads, workdir, args.repeat_noisy, args.baseline_mode)
            )
    summary = summarize(runs, levels)
    total = time.perf_counter() - started
    print(f"\ntotal time {total:.0f} s", flush=True)

    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(
        json.dumps(
            {
                "model": model,
                "levels": levels,
                "seconds_per_level": seconds,
                "max_tokens": MAX_TOKENS,
                "omp_num_threads": args.threads,
                "baseline_mode": args.baseline_mode,
                "cpus": os.cpu_count(),
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "python": platform.python_version(),
                "prompts": PROMPTS,
                "total_s": total,
                "summary": summary,
                "runs": [asdict(run) for run in runs],
            },
            indent=2,
        )
    )
    print(f"written to {args.results}")
    return 1 if any(run.failure for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
