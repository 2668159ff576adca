"""Benchmark of the feedback service's ingest path and of the training-data exports.

Run from the repository root:

    .venv/bin/python bench/bench_feedback.py                   # 32 clients, 10 s, 1,000,000 export rows
    .venv/bin/python bench/bench_feedback.py --quick           # 4 clients, 3 s, 20,000 rows (well under a minute)
    .venv/bin/python bench/bench_feedback.py --clients 32 --seconds 10 --export-rows 1000000
    .venv/bin/python bench/bench_feedback.py --skip-export     # ingest only (or --skip-ingest)
    .venv/bin/python bench/bench_feedback.py --skip-export --ingest-runs 3   # run-to-run spread

1. Ingest: starts the real service (`llmfl serve`) on a fresh SQLite database and drives
   `POST /feedback` (the original API's payload) with N closed-loop clients, each on one persistent
   HTTP/1.1 keep-alive connection, for S seconds. The client is a minimal asyncio client on raw
   streams (uvloop when installed) so it takes little CPU from the server. Reports acknowledged
   writes/s and latency percentiles, then checks durability: the rows committed in the `ratings`
   table, counted by a separate SQLite connection while the server still runs (so nothing a clean
   shutdown flushes can hide a write acknowledged before its commit) and again after the shutdown,
   must be at least the number of 201 responses.
2. Export: seeds a SQLite database with `--export-rows` feedback rows (60% ratings, 30% comparisons
   of 2-4 ranked answers, 10% corrections; prompts repeat, so groups hold several rows) straight
   through `sqlite3`, then times `llmfl export sft|dpo|kto` as subprocesses: wall time and the
   child's own peak RSS (its VmHWM, polled from /proc). The same exports run on a database with
   1/10 of the rows, to show whether memory stays flat as the row count grows.

Figures are printed beside the targets and written as JSON to bench/results/feedback.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench_common import HOST, free_port, percentile, verdict

from llm_feedback_loop.training_data.records import prompt_hash

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "feedback.json"
VENV_BIN = Path(sys.executable).parent
LLMFL = VENV_BIN / "llmfl"

TARGET_WRITES_PER_S = 1500.0
TARGET_P99_MS = 50.0
TARGET_CLIENTS = 32
TARGET_EXPORT_S_PER_MILLION = 20.0
# "Flat" memory: 10x the rows may cost at most this much more peak RSS.
FLAT_MEMORY_RATIO = 1.5


# --------------------------------------------------------------------------------------------------
# Helpers


def child_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass
class ChildRun:
    returncode: int
    wall_s: float
    peak_rss_mb: float
    cpu_s: float
    stderr_tail: str


def vm_hwm_kib(pid: int) -> int | None:
    """The process's peak resident set (VmHWM) in KiB, or None once it has exited (or off Linux)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def run_child(command: list[str], env: dict[str, str], cwd: Path, poll_s: float = 0.01) -> ChildRun:
    """Run a command to completion: its wall time, its own peak RSS and its CPU time.

    Peak RSS is the child's VmHWM, polled until it exits (it only grows, so the last reading is the peak
    but for the final poll interval). Not `ru_maxrss`: Linux carries the parent's high-water mark over
    fork + exec, so a child of a large parent would report at least the parent's size.
    """
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr)
        peak_kib = 0
        while True:
            peak_kib = max(peak_kib, vm_hwm_kib(process.pid) or 0)
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(poll_s)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if peak_kib == 0:  # no /proc: fall back on ru_maxrss (KiB on Linux), an upper bound
            peak_kib = usage.ru_maxrss
        stderr.seek(0)
        tail = stderr.read()[-2000:].decode("utf-8", "replace")
    return ChildRun(
        returncode=process.returncode,
        wall_s=wall,
        peak_rss_mb=peak_kib / 1024,
        cpu_s=usage.ru_utime + usage.ru_stime,
        stderr_tail=tail,
    )


def count_rows(db_path: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


# --------------------------------------------------------------------------------------------------
# 1. Ingest


@dataclass
class ClientStats:
    acked: int = 0  # 201 responses, warm-up included
    measured: list[float] = field(default_factory=list)  # latencies (s) of 201s completed in the window
    errors: int = 0
    first_error: str | None = None

    def error(self, message: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = message


@dataclass
class IngestResult:
    clients: int
    seconds: float
    warmup_s: float
    event_loop: str
    acked_total: int
    acked_in_window: int
    writes_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    first_error: str | None
    rows_while_running: int
    rows_after_shutdown: int
    durable: bool
    server_cpu_percent: float  # of one core, over the whole load
    client_cpu_percent: float
    server_exit_code: int | None
    server_shutdown_s: float


class HttpError(Exception):
    pass


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server wants to close) of one HTTP/1.1 response with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length: int | None = None
    close = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
        elif name == b"transfer-encoding":
            raise HttpError(f"unsupported transfer-encoding {value.strip()!r}")
    if length is None:
        raise HttpError("response without Content-Length")
    body = await reader.readexactly(length) if length else b""
    return status, body, close


async def feedback_client(client_id: int, port: int, window_start: float, deadline: float, stats: ClientStats) -> None:
    """One closed-loop client: post, wait for the 201, post the next, until the deadline."""
    head = (
        f"POST /feedback HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        "Content-Length: {}\r\n\r\n"
    )
    rng = random.Random(client_id)
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    sequence = 0
    while time.perf_counter() < deadline:
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection(HOST, port)
            except OSError as error:
                stats.error(f"connect: {error}")
                await asyncio.sleep(0.05)
                continue
        assert reader is not None
        sequence += 1
        body = json.dumps(
            {
                "prompt": f"Client {client_id} question {sequence}: how do I tune {rng.randrange(10_000)} workers?",
                "response": f"Answer {sequence}: start with one worker per core and measure before adding more.",
                "rating": "up" if rng.random() < 0.7 else "down",
                "model": "bench",
            }
        ).encode()
        request = head.format(len(body)).encode() + body
        started = time.perf_counter()
        try:
            writer.write(request)
            status, response, close = await read_response(reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, HttpError, ValueError) as error:
            stats.error(f"{type(error).__name__}: {error}")
            writer.close()
            reader = writer = None
            continue
        finished = time.perf_counter()
        if status == 201:
            stats.acked += 1
            if window_start <= finished <= deadline:
                stats.measured.append(finished - started)
        else:
            stats.error(f"HTTP {status}: {response[:300].decode('utf-8', 'replace')}")
        if close:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def drive_load(port: int, clients: int, seconds: float, warmup: float) -> list[ClientStats]:
    start = time.perf_counter()
    window_start = start + warmup
    deadline = window_start + seconds
    stats = [ClientStats() for _ in range(clients)]
    await asyncio.gather(*(feedback_client(i, port, window_start, deadline, stats[i]) for i in range(clients)))
    return stats


def run_event_loop(coroutine: Any) -> tuple[Any, str]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine), "asyncio"
    return uvloop.run(coroutine), "uvloop"


def wait_for_health(port: int, server: subprocess.Popen[bytes], log_path: Path, timeout: float = 120.0) -> None:
    url = f"http://{HOST}:{port}/health"
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    server.kill()
    raise SystemExit(f"the server did not answer {url} within {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


def stop_server(server: subprocess.Popen[bytes], timeout: float = 60.0) -> tuple[int | None, float]:
    started = time.perf_counter()
    server.send_signal(signal.SIGINT)
    try:
        code: int | None = server.wait(timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        code = None
    return code, time.perf_counter() - started


def bench_ingest(workdir: Path, clients: int, seconds: float, warmup: float) -> IngestResult:
    import psutil

    db_path = workdir / "bench.db"
    log_path = workdir / "server.log"
    port = free_port()
    env = child_env(f"sqlite:///{db_path}")
    print(
        f"\n== Ingest: POST /feedback, {clients} closed-loop keep-alive clients, {seconds:g} s (+{warmup:g} s warm-up)"
    )
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(LLMFL), "serve", "--host", HOST, "--port", str(port), "--log-level", "warning"],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_health(port, server, log_path)
            server_process = psutil.Process(server.pid)
            server_cpu_before = sum(server_process.cpu_times()[:2])
            client_cpu_before = time.process_time()
            load_started = time.perf_counter()
            stats, event_loop = run_event_loop(drive_load(port, clients, seconds, warmup))
            load_s = time.perf_counter() - load_started
            client_cpu = time.process_time() - client_cpu_before
            server_cpu = sum(server_process.cpu_times()[:2]) - server_cpu_before
            # Every client has had its last answer: whatever was acknowledged must be committed now.
            rows_while_running = count_rows(db_path, "ratings")
        finally:
            exit_code, shutdown_s = stop_server(server)
    rows_after = count_rows(db_path, "ratings")

    latencies = sorted(latency for s in stats for latency in s.measured)
    acked_total = sum(s.acked for s in stats)
    errors = sum(s.errors for s in stats)
    first_error = next((s.first_error for s in stats if s.first_error), None)
    ms = [x * 1000 for x in latencies]
    return IngestResult(
        clients=clients,
        seconds=seconds,
        warmup_s=warmup,
        event_loop=event_loop,
        acked_total=acked_total,
        acked_in_window=len(latencies),
        writes_per_s=len(latencies) / seconds,
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p99_ms=percentile(ms, 99),
        max_ms=ms[-1] if ms else float("nan"),
        errors=errors,
        first_error=first_error,
        rows_while_running=rows_while_running,
        rows_after_shutdown=rows_after,
        durable=rows_while_running >= acked_total and rows_after >= acked_total,
        server_cpu_percent=100 * server_cpu / load_s,
        client_cpu_percent=100 * client_cpu / load_s,
        server_exit_code=exit_code,
        server_shutdown_s=shutdown_s,
    )


def print_ingest(result: IngestResult) -> None:
    at_target = result.clients == TARGET_CLIENTS
    note = "" if at_target else f"  (targets are for {TARGET_CLIENTS} clients)"
    print(f"  client event loop        {result.event_loop}")
    print(
        f"  acknowledged writes/s    {result.writes_per_s:10,.0f}   target >= {TARGET_WRITES_PER_S:,.0f}"
        f"  {verdict(result.writes_per_s >= TARGET_WRITES_PER_S)}{note}"
    )
    print(f"  latency p50              {result.p50_ms:10.1f} ms")
    print(f"  latency p90              {result.p90_ms:10.1f} ms")
    print(
        f"  latency p99              {result.p99_ms:10.1f} ms  target < {TARGET_P99_MS:.0f} ms"
        f"  {verdict(result.p99_ms < TARGET_P99_MS)}{note}"
    )
    print(f"  latency max              {result.max_ms:10.1f} ms")
    print(
        f"  errors                   {result.errors:10,}" + (f"   first: {result.first_error}" if result.errors else "")
    )
    print(f"  201s (incl. warm-up)     {result.acked_total:10,}")
    print(f"  rows, server running     {result.rows_while_running:10,}")
    print(f"  rows, after shutdown     {result.rows_after_shutdown:10,}")
    print(f"  durable (rows >= 201s)   {verdict(result.durable):>10}")
    print(f"  server CPU               {result.server_cpu_percent:9.0f} % of one core")
    print(f"  client CPU (this bench)  {result.client_cpu_percent:9.0f} % of one core")
    print(f"  server shutdown          {result.server_shutdown_s:10.2f} s, exit code {result.server_exit_code}")


def print_ingest_summary(runs: list[IngestResult]) -> None:
    rates = [run.writes_per_s for run in runs]
    p99s = [run.p99_ms for run in runs]
    print(f"\n  over {len(runs)} ingest runs (min / median / max):")
    print(f"  acknowledged writes/s    {min(rates):,.0f} / {statistics.median(rates):,.0f} / {max(rates):,.0f}")
    print(f"  latency p99 ms           {min(p99s):.1f} / {statistics.median(p99s):.1f} / {max(p99s):.1f}")


# --------------------------------------------------------------------------------------------------
# 2. Export

# fmt: off
WORDS = (
    "model", "answer", "prompt", "container", "cluster", "python", "request", "latency", "memory", "stream",
    "export", "token", "dataset", "training", "feedback", "rating", "batch", "commit", "index", "query",
    "server", "client", "worker", "thread", "process", "queue",
)
# fmt: on
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


@dataclass
class SeedResult:
    rows: int
    ratings: int
    comparisons: int
    corrections: int
    prompts: int
    seconds: float
    db_mb: float


def seed_database(db_path: Path, rows: int, seed: int = 0, chunk: int = 50_000) -> SeedResult:
    """`rows` feedback rows: 60% ratings, 30% comparisons (2-4 ranked answers), 10% corrections.

    About rows/3 distinct prompts, each row picking one at random, so most prompts gather several rows
    (thumbs on the same answers, comparisons, corrections) and some only one.
    """
    started = time.perf_counter()
    env = child_env(f"sqlite:///{db_path}")
    upgrade = subprocess.run(
        [str(LLMFL), "db", "upgrade"], env=env, cwd=db_path.parent, capture_output=True, text=True, check=False
    )
    if upgrade.returncode != 0:
        raise SystemExit(f"llmfl db upgrade failed:\n{upgrade.stderr}")

    rng = random.Random(seed)
    prompt_count = max(1, rows // 3)
    prompts: list[tuple[str, str, str]] = []  # (prompt, prompt_messages JSON, prompt_hash)
    for index in range(prompt_count):
        text = f"Question {index}: {sentence(rng, rng.randint(8, 24))}?"
        messages = [{"role": "user", "content": text}]
        prompts.append((text, json.dumps(messages), prompt_hash(messages)))

    def answer(prompt_index: int, variant: int) -> str:
        # A few fixed answers per prompt, so thumbs and comparisons on one prompt agree or disagree.
        local = random.Random(prompt_index * 8 + variant)
        return f"Answer {variant} to {prompt_index}: {sentence(local, local.randint(20, 60))}."

    common = "created_at, updated_at, annotator, metadata, prompt, prompt_messages, prompt_hash, model, comment"
    statements = {
        "ratings": f"INSERT INTO ratings ({common}, response, rating, generation_id) VALUES ({'?,' * 11}?)",
        "comparisons": f"INSERT INTO comparisons ({common}, responses, ranking, best_index) VALUES ({'?,' * 11}?)",
        "corrections": f"INSERT INTO corrections ({common}, original_response, corrected_response, generation_id)"
        f" VALUES ({'?,' * 11}?)",
    }
    counts = dict.fromkeys(statements, 0)
    epoch = datetime(2026, 1, 1, 10, 0, 0)
    annotators = [f"annotator-{i}" for i in range(20)] + [None]

    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as connection:
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-262144")
        # Drop the secondary indexes while loading and build them once at the end: same schema, much faster.
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        done = 0
        while done < rows:
            batch: dict[str, list[tuple[Any, ...]]] = {name: [] for name in statements}
            for row_number in range(done, min(rows, done + chunk)):
                prompt_index = rng.randrange(prompt_count)
                text, messages_json, digest = prompts[prompt_index]
                stamp = (epoch + timedelta(milliseconds=37 * row_number)).strftime(TIME_FORMAT)
                head = (stamp, stamp, rng.choice(annotators), None, text, messages_json, digest, "bench-model", None)
                kind = rng.random()
                if kind < 0.6:
                    response = answer(prompt_index, rng.randrange(3))
                    batch["ratings"].append((*head, response, "up" if rng.random() < 0.6 else "down", None))
                elif kind < 0.9:
                    variants = rng.sample(range(6), rng.randint(2, 4))
                    responses = [{"id": str(i), "text": answer(prompt_index, v)} for i, v in enumerate(variants)]
                    ranking = list(range(len(variants)))
                    rng.shuffle(ranking)
                    batch["comparisons"].append((*head, json.dumps(responses), json.dumps(ranking), ranking[0]))
                else:
                    original = answer(prompt_index, rng.randrange(3))
                    corrected = f"Corrected answer to {prompt_index}: {sentence(rng, rng.randint(20, 60))}."
                    batch["corrections"].append((*head, original, corrected, None))
            connection.execute("BEGIN")
            for name, values in batch.items():
                connection.executemany(statements[name], values)
                counts[name] += len(values)
            connection.execute("COMMIT")
            done = min(rows, done + chunk)
        for _, sql in indexes:
            connection.execute(sql)
        connection.execute("PRAGMA journal_mode=WAL")  # as the service leaves it
    return SeedResult(
        rows=rows,
        ratings=counts["ratings"],
        comparisons=counts["comparisons"],
        corrections=counts["corrections"],
        prompts=prompt_count,
        seconds=time.perf_counter() - started,
        db_mb=db_path.stat().st_size / 1e6,
    )


@dataclass
class ExportRun:
    kind: str
    db_rows: int
    output_rows: int
    wall_s: float
    cpu_s: float
    rows_per_s: float  # feedback rows read per second of wall time
    peak_rss_mb: float
    output_mb: float


def run_export(kind: str, db_path: Path, db_rows: int, out_dir: Path) -> ExportRun:
    out = out_dir / f"{kind}.jsonl"
    env = child_env(f"sqlite:///{db_path}")
    result = run_child([str(LLMFL), "export", kind, "--out", str(out)], env, out_dir)
    if result.returncode != 0:
        raise SystemExit(f"llmfl export {kind} failed ({result.returncode}):\n{result.stderr_tail}")
    manifest = json.loads((out_dir / f"{kind}.manifest.json").read_text())
    return ExportRun(
        kind=kind,
        db_rows=db_rows,
        output_rows=int(manifest["counts"]["rows"]),
        wall_s=result.wall_s,
        cpu_s=result.cpu_s,
        rows_per_s=db_rows / result.wall_s,
        peak_rss_mb=result.peak_rss_mb,
        output_mb=out.stat().st_size / 1e6,
    )


@dataclass
class ExportResult:
    startup_s: float  # `llmfl version`: interpreter + CLI import, paid by every export
    startup_peak_rss_mb: float
    seeds: list[SeedResult]
    runs: list[ExportRun]


def bench_export(workdir: Path, rows: int) -> ExportResult:
    kinds = ("sft", "dpo", "kto")
    sizes = [max(1, rows // 10), rows]
    print(f"\n== Export: llmfl export {'|'.join(kinds)} on {sizes[0]:,} and {sizes[1]:,} feedback rows (SQLite)")
    startup = run_child([str(LLMFL), "version"], child_env(f"sqlite:///{workdir / 'unused.db'}"), workdir)
    seeds: list[SeedResult] = []
    runs: list[ExportRun] = []
    for size in sizes:
        size_dir = workdir / f"export-{size}"
        size_dir.mkdir()
        db_path = size_dir / "export.db"
        seed = seed_database(db_path, size)
        seeds.append(seed)
        print(
            f"  seeded {seed.rows:,} rows ({seed.ratings:,} ratings, {seed.comparisons:,} comparisons,"
            f" {seed.corrections:,} corrections; {seed.prompts:,} prompts) in {seed.seconds:.1f} s,"
            f" {seed.db_mb:,.0f} MB"
        )
        for kind in kinds:
            run = run_export(kind, db_path, size, size_dir)
            runs.append(run)
            print(
                f"  {kind:<4} {size:>10,} rows  {run.wall_s:7.2f} s  {run.rows_per_s:10,.0f} rows/s"
                f"  peak {run.peak_rss_mb:7.1f} MB  -> {run.output_rows:,} {kind} rows ({run.output_mb:,.0f} MB)"
            )
        # The databases are large; keep the disk footprint to one at a time.
        for path in size_dir.iterdir():
            path.unlink()
    return ExportResult(startup.wall_s, startup.peak_rss_mb, seeds, runs)


def print_export(result: ExportResult) -> dict[str, Any]:
    """Summary lines against the targets; returns the verdicts."""
    big = max(run.db_rows for run in result.runs)
    small = min(run.db_rows for run in result.runs)
    budget = TARGET_EXPORT_S_PER_MILLION * big / 1_000_000
    note = "" if big == 1_000_000 else " (target is 20 s for 1,000,000 rows, scaled)"
    verdicts: dict[str, Any] = {}
    print(f"  {'kind':<5}{'rows':>11}{'wall s':>9}{'rows/s':>11}{'peak MB':>9}{'MB at 1/10':>12}{'ratio':>7}  targets")
    for run in (r for r in result.runs if r.db_rows == big):
        small_run = next(r for r in result.runs if r.kind == run.kind and r.db_rows == small)
        ratio = run.peak_rss_mb / small_run.peak_rss_mb
        fast = run.wall_s <= budget
        flat = ratio <= FLAT_MEMORY_RATIO
        verdicts[run.kind] = {"time_ok": fast, "memory_flat": flat, "peak_ratio": ratio, "time_budget_s": budget}
        print(
            f"  {run.kind:<5}{run.db_rows:>11,}{run.wall_s:>9.2f}{run.rows_per_s:>11,.0f}{run.peak_rss_mb:>9.1f}"
            f"{small_run.peak_rss_mb:>12.1f}{ratio:>7.2f}  time <= {budget:.1f} s {verdict(fast)}{note},"
            f" memory flat (x{FLAT_MEMORY_RATIO} for 10x rows) {verdict(flat)}"
        )
    print(
        f"  (every export pays the CLI's start-up: `llmfl version` takes {result.startup_s:.2f} s,"
        f" peak {result.startup_peak_rss_mb:.0f} MB)"
    )
    return verdicts


# --------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small run: 4 clients, 3 s, 20,000 export rows")
    parser.add_argument("--clients", type=int, help="concurrent ingest clients (default 32; 4 with --quick)")
    parser.add_argument("--seconds", type=float, help="measured ingest time (default 10; 3 with --quick)")
    parser.add_argument("--warmup", type=float, help="ingest warm-up before measuring (default 1; 0.5 with --quick)")
    parser.add_argument(
        "--export-rows", type=int, help="feedback rows to export (default 1,000,000; 20,000 with --quick)"
    )
    parser.add_argument("--ingest-runs", type=int, default=1, help="repeat the ingest run (fresh database each)")
    parser.add_argument("--skip-ingest", action="store_true", help="run only the export benchmark")
    parser.add_argument("--skip-export", action="store_true", help="run only the ingest benchmark")
    parser.add_argument("--workdir", type=Path, help="where the databases go (default: a temporary folder)")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    args = parser.parse_args(argv)
    quick = {"clients": 4, "seconds": 3.0, "warmup": 0.5, "export_rows": 20_000}
    full = {"clients": 32, "seconds": 10.0, "warmup": 1.0, "export_rows": 1_000_000}
    defaults = quick if args.quick else full
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.ingest_runs < 1 or args.clients < 1 or args.seconds <= 0 or args.warmup < 0 or args.export_rows < 10:
        parser.error(
            "--ingest-runs >= 1, --clients >= 1, --seconds > 0, --warmup >= 0 and --export-rows >= 10 are required"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not LLMFL.exists():
        raise SystemExit(f"{LLMFL} not found: run this with the project's virtual environment's python")
    report: dict[str, Any] = {
        "created_at": datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "options": {
            "quick": args.quick,
            "clients": args.clients,
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "export_rows": args.export_rows,
            "ingest_runs": args.ingest_runs,
        },
        "targets": {
            "ingest_writes_per_s": TARGET_WRITES_PER_S,
            "ingest_p99_ms": TARGET_P99_MS,
            "ingest_clients": TARGET_CLIENTS,
            "export_s_per_million_rows": TARGET_EXPORT_S_PER_MILLION,
            "export_flat_memory_ratio": FLAT_MEMORY_RATIO,
        },
    }
    print(f"llm-feedback-loop benchmark: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="llmfl-bench-", dir=args.workdir) as scratch:
        workdir = Path(scratch)
        if not args.skip_ingest:
            runs: list[IngestResult] = []
            for number in range(args.ingest_runs):
                (workdir / f"ingest-{number}").mkdir()
                runs.append(bench_ingest(workdir / f"ingest-{number}", args.clients, args.seconds, args.warmup))
                print_ingest(runs[-1])
                ok &= runs[-1].durable and runs[-1].errors == 0
            if len(runs) > 1:
                print_ingest_summary(runs)
            report["ingest"] = [asdict(run) for run in runs]
        if not args.skip_export:
            (workdir / "export").mkdir()
            export = bench_export(workdir / "export", args.export_rows)
            verdicts = print_export(export)
            report["export"] = asdict(export) | {"verdicts": verdicts}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.results}")
    # Exit status reflects correctness (errors, lost writes), not whether the performance targets are met.
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
