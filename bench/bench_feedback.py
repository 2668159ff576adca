"""Benchmark of the feedback service's ingest path and of the training-data exports.

Run from the repository root:

    .venv/bin/python bench/bench_feedback.py                   # 32 clients, 10 s per mode, 3 runs, 1M export rows
    .venv/bin/python bench/bench_feedback.py --quick           # 4 clients, 3 s per mode, 1 run, 20,000 rows
    .venv/bin/python bench/bench_feedback.py --clients 32 --seconds 10 --export-rows 1000000
    .venv/bin/python bench/bench_feedback.py --skip-export     # ingest only (or --skip-ingest)
    .venv/bin/python bench/bench_feedback.py --skip-export --ingest-runs 5   # more runs
    .venv/bin/python bench/bench_feedback.py --skip-export --auth on         # with keys only (or off)

1. Ingest: starts the real service (`llmfl serve`) on a fresh SQLite database and drives
   `POST /feedback` (the original API's payload) with N closed-loop clients, each on one persistent
   HTTP/1.1 keep-alive connection per slice of load. The client is a minimal asyncio client on raw
   streams (uvloop when installed) so it takes little CPU from the server. Authentication on and off are
   measured side by side: two servers, each on its own database, are up at once and take turns under the
   load in slices of 1 s (off, on, on, off, off, on, ...), so that drift on a shared machine weighs on both
   alike; `keys` clients each post as their own annotator with `Authorization: Bearer <key>` (keys issued
   in the database before the server starts), `open` clients send none to a server with
   AUTH_REQUIRED=false. Reports each mode's acknowledged writes/s, latency percentiles and server CPU per
   write, their ratio (target >= 90%), and the medians over --ingest-runs runs.
   Durability: the keys server is killed with SIGKILL at the end of its last slice, every client still
   posting; the id of every 201 must then be in the `ratings` table (opened as the next server would,
   replaying the WAL), and the database must pass `PRAGMA integrity_check`. The open server gets SIGINT
   at the end; its rows are counted by a separate connection while it still runs (so nothing a clean
   shutdown flushes can hide a write acknowledged before its commit) and after.
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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench_common import HOST, free_port, percentile, verdict

from llm_feedback_loop.storage.prompts import prompt_hash

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "feedback.json"
VENV_BIN = Path(sys.executable).parent
LLMFL = VENV_BIN / "llmfl"

TARGET_WRITES_PER_S = 1500.0
TARGET_P99_MS = 50.0
TARGET_CLIENTS = 32
# Checking a key on every request may cost at most 10% of the writes/s reached with authentication off.
TARGET_AUTH_RATIO = 0.90
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

AUTH_OFF, AUTH_ON = "open", "keys"
MODE_LABELS = {AUTH_OFF: "keys off (AUTH_REQUIRED=false)", AUTH_ON: "keys on (Bearer key, every request)"}


def issue_annotator_keys(database_url: str, count: int) -> list[str]:
    """Migrate a fresh database and give it `count` annotators (`bench-annotator-N`), one API key each, as
    `llmfl keys create --role annotator --user NAME` would: each client then posts as its own annotator."""
    from llm_feedback_loop.auth import accounts
    from llm_feedback_loop.settings import Settings
    from llm_feedback_loop.storage.engine import create_engine, create_session_factory
    from llm_feedback_loop.storage.migrate import upgrade_to_head

    async def issue() -> list[str]:
        url = Settings(database_url=database_url, _env_file=None).database_url  # type: ignore[call-arg]
        engine = create_engine(url)
        try:
            await upgrade_to_head(engine)
            async with create_session_factory(engine)() as session:
                keys = []
                for number in range(count):
                    name = f"bench-annotator-{number}"
                    _, key, _ = await accounts.key_for_role(session, "annotator", name, label="bench_feedback")
                    keys.append(key)
                await session.commit()
            return keys
        finally:
            await engine.dispose()

    return asyncio.run(issue())


@dataclass
class ClientStats:
    """One client's tally over every slice it posted in (warm-up included)."""

    acked: int = 0  # 201 responses
    acked_ids: list[int] = field(default_factory=list)  # the ids those 201s returned
    measured: list[float] = field(default_factory=list)  # latencies (s) of 201s completed inside a window
    errors: int = 0
    first_error: str | None = None
    cut_by_kill: int = 0  # requests in flight when the server was killed (expected, not errors)

    def error(self, message: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = message


@dataclass
class IngestResult:
    mode: str  # AUTH_ON or AUTH_OFF
    clients: int
    seconds: float  # measured, over all slices
    slices: int
    warmup_s: float
    event_loop: str
    stop: str  # how the server was stopped: "kill -9" under load, or "SIGINT" after the load
    acked_total: int
    acked_in_window: int
    writes_per_s: float
    slice_writes_per_s: list[float]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    first_error: str | None
    cut_by_kill: int
    rows_while_running: int | None  # SIGINT runs: counted before the shutdown
    rows_after_stop: int
    acked_missing: int  # acknowledged ids not in the table after the stop: lost writes
    integrity: str  # PRAGMA integrity_check after the stop
    durable: bool
    server_cpu_percent: float  # of one core, over its slices
    server_cpu_us_per_write: float  # the server's CPU time per 201 in its slices: less swayed by other load
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


@dataclass
class LoadClock:
    """Latencies count between `window_start` and `window_end`; clients post until `stop_at` or until `stopped`
    is set (a kill -9 slice: once the server is dead, so that the failures after it are the kill's, not errors)."""

    window_start: float
    window_end: float
    stop_at: float
    stopped: bool = False


async def feedback_client(
    client_id: int, round_id: int, port: int, key: str | None, clock: LoadClock, stats: ClientStats
) -> None:
    """One closed-loop client: post, wait for the 201, post the next, until the load stops."""
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    head = (
        f"POST /feedback HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n{auth}"
        "Content-Length: {}\r\n\r\n"
    )
    rng = random.Random(f"{client_id}-{round_id}")
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    sequence = 0
    while not clock.stopped and time.perf_counter() < clock.stop_at:
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
                "prompt": f"Client {client_id} round {round_id} question {sequence}: how do I tune"
                f" {rng.randrange(10_000)} workers?",
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
            writer.close()
            reader = writer = None
            if clock.stopped:  # the server was killed under this request: no answer, so nothing acknowledged
                stats.cut_by_kill += 1
                break
            stats.error(f"{type(error).__name__}: {error}")
            continue
        finished = time.perf_counter()
        if status == 201:
            stats.acked += 1
            try:
                stats.acked_ids.append(int(json.loads(response)["id"]))
            except (ValueError, KeyError, TypeError):
                stats.error(f"201 without an id: {response[:300].decode('utf-8', 'replace')}")
            if clock.window_start <= finished <= clock.window_end:
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


async def drive_load(
    port: int,
    keys: list[str | None],
    stats: list[ClientStats],
    round_id: int,
    seconds: float,
    measure: bool = True,
    at_deadline: Callable[[], None] | None = None,
) -> None:
    """len(keys) clients (client i sends keys[i], tallies into stats[i]) for `seconds`, measured unless
    `measure` is False (warm-up); `at_deadline()` runs when the time is up, with every client still posting (the
    kill -9), before they are told to stop."""
    start = time.perf_counter()
    window_end = start + seconds
    # With `at_deadline`, clients post on past the window until it has run: the kill lands with requests in flight.
    stop_at = float("inf") if at_deadline is not None else window_end
    clock = LoadClock(window_start=start if measure else window_end + 1e9, window_end=window_end, stop_at=stop_at)
    clients = [
        asyncio.ensure_future(feedback_client(i, round_id, port, key, clock, stats[i])) for i, key in enumerate(keys)
    ]
    if at_deadline is not None:
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        at_deadline()  # blocks the loop until done: no client sees the kill before `stopped` is set
        clock.stopped = True
    await asyncio.gather(*clients)


def event_loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run_event_loop(coroutine: Any) -> Any:
    if event_loop_name() == "uvloop":
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def wait_for_health(
    port: int, server: subprocess.Popen[bytes], log_path: Path, key: str | None = None, timeout: float = 120.0
) -> None:
    url = f"http://{HOST}:{port}/health"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2) as response:
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


def check_stored(db_path: Path, acked_ids: list[int]) -> tuple[int, int, str]:
    """(rows, acknowledged ids missing, integrity_check) of a stopped server's database. A read-write
    connection: after a kill -9 it replays the WAL as the next server would."""
    with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as connection:
        integrity = str(connection.execute("PRAGMA integrity_check").fetchone()[0])
        stored = {row[0] for row in connection.execute("SELECT id FROM ratings")}
    return len(stored), sum(1 for row_id in acked_ids if row_id not in stored), integrity


@dataclass
class Service:
    """One benchmarked `llmfl serve` on its own fresh database, and what its slices of load gave."""

    mode: str
    workdir: Path
    keys: list[str | None]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    stats: list[ClientStats] = field(default_factory=list)
    slice_rates: list[float] = field(default_factory=list)
    warmup_s: float = 0.0
    measured_s: float = 0.0
    acked_in_slices: int = 0  # 201s of the measured slices, their tails included (what server_cpu_s paid for)
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    killed: bool = False

    @property
    def db_path(self) -> Path:
        return self.workdir / "bench.db"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def start(self) -> None:
        env = child_env(f"sqlite:///{self.db_path}")
        env["AUTH_REQUIRED"] = "true" if self.mode == AUTH_ON else "false"  # it binds 127.0.0.1: off is allowed
        self.port = free_port()
        self.stats = [ClientStats() for _ in self.keys]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(LLMFL), "serve", "--host", HOST, "--port", str(self.port), "--log-level", "warning"],
                env=env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_health(self.port, self.process, self.log_path, self.keys[0])

    def server_cpu(self) -> float:
        import psutil

        assert self.process is not None
        return float(sum(psutil.Process(self.process.pid).cpu_times()[:2]))

    def load(self, round_id: int, seconds: float, measure: bool = True, kill: bool = False) -> None:
        """One slice of load; with `kill`, SIGKILL the server when the time is up, clients still posting."""
        assert self.process is not None
        process = self.process
        cpu_before, client_before = self.server_cpu(), time.process_time()
        measured_before = sum(len(s.measured) for s in self.stats)
        acked_before = sum(s.acked for s in self.stats)
        cpu_at_kill: list[float] = []

        def kill_under_load() -> None:
            cpu_at_kill.append(self.server_cpu())
            process.send_signal(signal.SIGKILL)
            process.wait()

        run_event_loop(
            drive_load(self.port, self.keys, self.stats, round_id, seconds, measure, kill_under_load if kill else None)
        )
        self.killed |= kill
        if not measure:
            self.warmup_s += seconds
        else:
            self.server_cpu_s += (cpu_at_kill[0] if kill else self.server_cpu()) - cpu_before
            self.client_cpu_s += time.process_time() - client_before
            self.measured_s += seconds
            self.acked_in_slices += sum(s.acked for s in self.stats) - acked_before
            self.slice_rates.append((sum(len(s.measured) for s in self.stats) - measured_before) / seconds)

    def stop(self) -> IngestResult:
        """SIGINT (unless killed), then what the database holds of the acknowledged writes."""
        assert self.process is not None
        rows_while_running = None
        if self.killed:
            exit_code, shutdown_s = self.process.returncode, 0.0
        else:
            # Every client has had its last answer: whatever was acknowledged must be committed now.
            rows_while_running = count_rows(self.db_path, "ratings")
            exit_code, shutdown_s = stop_server(self.process)
        acked_ids = [row_id for s in self.stats for row_id in s.acked_ids]
        rows_after, missing, integrity = check_stored(self.db_path, acked_ids)
        latencies = sorted(latency for s in self.stats for latency in s.measured)
        acked_total = sum(s.acked for s in self.stats)
        ms = [x * 1000 for x in latencies]
        durable = (
            missing == 0
            and rows_after >= acked_total
            and integrity == "ok"
            and (rows_while_running is None or rows_while_running >= acked_total)
        )
        return IngestResult(
            mode=self.mode,
            clients=len(self.keys),
            seconds=self.measured_s,
            slices=len(self.slice_rates),
            warmup_s=self.warmup_s,
            event_loop=event_loop_name(),
            stop="kill -9" if self.killed else "SIGINT",
            acked_total=acked_total,
            acked_in_window=len(latencies),
            writes_per_s=len(latencies) / self.measured_s,
            slice_writes_per_s=self.slice_rates,
            p50_ms=percentile(ms, 50),
            p90_ms=percentile(ms, 90),
            p99_ms=percentile(ms, 99),
            max_ms=ms[-1] if ms else float("nan"),
            errors=sum(s.errors for s in self.stats),
            first_error=next((s.first_error for s in self.stats if s.first_error), None),
            cut_by_kill=sum(s.cut_by_kill for s in self.stats),
            rows_while_running=rows_while_running,
            rows_after_stop=rows_after,
            acked_missing=missing,
            integrity=integrity,
            durable=durable,
            server_cpu_percent=100 * self.server_cpu_s / self.measured_s,
            server_cpu_us_per_write=1e6 * self.server_cpu_s / max(1, self.acked_in_slices),
            client_cpu_percent=100 * self.client_cpu_s / self.measured_s,
            server_exit_code=exit_code,
            server_shutdown_s=shutdown_s,
        )

    def abandon(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def slice_order(modes: list[str], slices: int) -> list[str]:
    """Which mode each slice loads: pairs in `modes` order, every other pair reversed (off, on, on, off, ...),
    so that drift on a shared machine weighs on both modes alike."""
    order: list[str] = []
    for number in range(slices):
        order.extend(modes if number % 2 == 0 else modes[::-1])
    return order


def bench_ingest(
    workdir: Path, modes: list[str], clients: int, seconds: float, slice_s: float, warmup: float
) -> list[IngestResult]:
    """One run: a server per mode, each on a fresh database, both up at once; `seconds` of measured load for
    each, cut into slices of `slice_s` that alternate between them. The keys server is killed (SIGKILL) at the
    end of its last slice with every client posting; the open one gets SIGINT at the end."""
    slices = max(1, round(seconds / slice_s))
    slice_s = seconds / slices
    services: dict[str, Service] = {}
    try:
        for mode in modes:
            mode_dir = workdir / mode
            mode_dir.mkdir()
            keys: list[str | None] = [None] * clients
            if mode == AUTH_ON:
                keys = list(issue_annotator_keys(f"sqlite:///{mode_dir / 'bench.db'}", clients))
            services[mode] = Service(mode, mode_dir, keys)
            services[mode].start()
        for mode in modes:
            services[mode].load(0, warmup, measure=False)
        order = slice_order(modes, slices)
        last = {mode: len(order) - 1 - order[::-1].index(mode) for mode in modes}
        for number, mode in enumerate(order):
            services[mode].load(1 + number, slice_s, kill=mode == AUTH_ON and number == last[mode])
        results = [services[mode].stop() for mode in modes]
    finally:
        for service in services.values():
            service.abandon()
    return results


def print_ingest(number: int, result: IngestResult) -> None:
    """One line per mode of a run: throughput, latency, CPU, and what the stop left in the database."""
    if result.stop == "kill -9":
        stored = (
            f"kill -9 with {result.cut_by_kill} in flight: {result.acked_total:,} acked, {result.rows_after_stop:,}"
            f" rows, {result.acked_missing} acked missing"
        )
    else:
        stored = (
            f"SIGINT ({result.server_shutdown_s:.1f} s, exit {result.server_exit_code}): {result.acked_total:,} acked,"
            f" {result.rows_while_running:,} rows running, {result.rows_after_stop:,} after"
        )
    print(
        f"  run {number} {result.mode:<4} {result.writes_per_s:7,.0f} writes/s  p50 {result.p50_ms:5.1f}"
        f"  p90 {result.p90_ms:5.1f}  p99 {result.p99_ms:6.1f}  max {result.max_ms:6.1f} ms"
        f"  CPU server {result.server_cpu_percent:3.0f}% ({result.server_cpu_us_per_write:,.0f} us/write)"
        f" bench {result.client_cpu_percent:3.0f}%"
        f"  errors {result.errors}  {stored}, integrity {result.integrity}: {verdict(result.durable)}"
    )
    if result.errors:
        print(f"        first error: {result.first_error}")


def print_run_ratio(results: list[IngestResult]) -> None:
    """Keys on / off over one run's interleaved slices, and slice by slice (each on slice over the off slice
    beside it): the spread shows how much of the difference is the machine's drift."""
    by_mode = {result.mode: result for result in results}
    if AUTH_ON not in by_mode or AUTH_OFF not in by_mode:
        return
    on, off = by_mode[AUTH_ON], by_mode[AUTH_OFF]
    pairs = sorted(a / b for a, b in zip(on.slice_writes_per_s, off.slice_writes_per_s, strict=True) if b > 0)
    ratio = on.writes_per_s / off.writes_per_s
    low, mid, high = pairs[0], statistics.median(pairs), pairs[-1]
    print(
        f"        keys on / off: {100 * ratio:.1f} % over {on.slices} slice pairs of {on.seconds / on.slices:.1f} s"
        f" (slice pairs min / median / max: {100 * low:.0f} / {100 * mid:.0f} / {100 * high:.0f} %)"
    )


def print_ingest_summary(runs: list[IngestResult]) -> dict[str, Any]:
    """The medians per mode over the runs, the ratio keys on / keys off, the durability verdict; returns them."""
    clients = runs[0].clients
    note = "" if clients == TARGET_CLIENTS else f"  (targets are for {TARGET_CLIENTS} clients)"
    by_mode = {mode: [run for run in runs if run.mode == mode] for mode in (AUTH_OFF, AUTH_ON)}
    summary: dict[str, Any] = {}
    print(
        f"\n  {'median over the runs':<38}{'writes/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/write':>14}"
        "  runs (writes/s)"
    )
    for mode, mode_runs in by_mode.items():
        if not mode_runs:
            continue
        medians = {
            "writes_per_s": statistics.median(run.writes_per_s for run in mode_runs),
            "p50_ms": statistics.median(run.p50_ms for run in mode_runs),
            "p99_ms": statistics.median(run.p99_ms for run in mode_runs),
            "server_cpu_us_per_write": statistics.median(run.server_cpu_us_per_write for run in mode_runs),
        }
        summary[mode] = medians | {"runs": len(mode_runs)}
        each = ", ".join(f"{run.writes_per_s:,.0f}" for run in mode_runs)
        print(
            f"  {MODE_LABELS[mode]:<38}{medians['writes_per_s']:>10,.0f}{medians['p50_ms']:>9.1f}"
            f"{medians['p99_ms']:>9.1f}{medians['server_cpu_us_per_write']:>14,.0f}  {len(mode_runs)} ({each})"
        )
    if AUTH_ON in summary:
        on = summary[AUTH_ON]
        fast, quick = on["writes_per_s"] >= TARGET_WRITES_PER_S, on["p99_ms"] < TARGET_P99_MS
        print(
            f"  keys on: writes/s target >= {TARGET_WRITES_PER_S:,.0f} {verdict(fast)},"
            f" p99 target < {TARGET_P99_MS:.0f} ms {verdict(quick)}{note}"
        )
    if AUTH_ON in summary and AUTH_OFF in summary:
        ratio = summary[AUTH_ON]["writes_per_s"] / summary[AUTH_OFF]["writes_per_s"]
        per_run = [
            on.writes_per_s / off.writes_per_s for off, on in zip(by_mode[AUTH_OFF], by_mode[AUTH_ON], strict=True)
        ]
        summary |= {"ratio": ratio, "run_ratios": per_run, "ratio_ok": ratio >= TARGET_AUTH_RATIO}
        print(
            f"  ratio keys on / keys off (medians)    {100 * ratio:9.1f} %  target >= {100 * TARGET_AUTH_RATIO:.0f} %"
            f"  {verdict(ratio >= TARGET_AUTH_RATIO)}{note}   (run by run: "
            + ", ".join(f"{100 * each:.1f} %" for each in per_run)
            + ")"
        )
        cpu_ratio = summary[AUTH_ON]["server_cpu_us_per_write"] / summary[AUTH_OFF]["server_cpu_us_per_write"]
        summary["cpu_per_write_ratio"] = cpu_ratio
        print(
            f"  server CPU per write, keys on / off   {100 * cpu_ratio:9.1f} %  (the key check, and the annotator each"
            " row now records; less swayed than writes/s by what else the machine runs)"
        )
    killed = [run for run in runs if run.stop == "kill -9"]
    if killed:
        acked = sum(run.acked_total for run in killed)
        lost = sum(max(run.acked_missing, run.acked_total - run.rows_after_stop) for run in killed)
        durable = all(run.durable for run in killed)
        intact = all(run.integrity == "ok" for run in killed)
        summary["kill9"] = {"runs": len(killed), "acked": acked, "lost": lost, "durable": durable}
        print(
            f"  durability, kill -9 under load (keys on): {lost} of {acked:,} acknowledged writes lost"
            f" in {len(killed)} run(s), integrity {'ok' if intact else 'FAILED'}  {verdict(durable)}"
        )
    graceful = [run for run in runs if run.stop == "SIGINT"]
    if graceful:
        durable = all(run.durable for run in graceful)
        summary["sigint_durable"] = durable
        label = "keys off" if all(run.mode == AUTH_OFF for run in graceful) else "SIGINT runs"
        print(f"  durability, SIGINT after the load ({label}): every acknowledged write stored  {verdict(durable)}")
    return summary


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
    parser.add_argument(
        "--seconds", type=float, help="measured ingest time per mode and run (default 10; 3 with --quick)"
    )
    parser.add_argument("--warmup", type=float, help="ingest warm-up before measuring (default 1; 0.5 with --quick)")
    parser.add_argument(
        "--export-rows", type=int, help="feedback rows to export (default 1,000,000; 20,000 with --quick)"
    )
    parser.add_argument(
        "--slice",
        type=float,
        default=1.0,
        help="length of one slice of load (s): the modes take turns, off, on, on, off, ... (default 1)",
    )
    parser.add_argument(
        "--ingest-runs", type=int, help="repeat the ingest run, fresh databases each (default 3; 1 with --quick)"
    )
    parser.add_argument(
        "--auth",
        choices=("both", "on", "off"),
        default="both",
        help="ingest with API keys (on), with AUTH_REQUIRED=false (off), or both side by side (default)",
    )
    parser.add_argument("--skip-ingest", action="store_true", help="run only the export benchmark")
    parser.add_argument("--skip-export", action="store_true", help="run only the ingest benchmark")
    parser.add_argument("--workdir", type=Path, help="where the databases go (default: a temporary folder)")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    args = parser.parse_args(argv)
    quick = {"clients": 4, "seconds": 3.0, "warmup": 0.5, "export_rows": 20_000, "ingest_runs": 1}
    full = {"clients": 32, "seconds": 10.0, "warmup": 1.0, "export_rows": 1_000_000, "ingest_runs": 3}
    defaults = quick if args.quick else full
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if (
        args.ingest_runs < 1
        or args.clients < 1
        or args.seconds <= 0
        or not 0 < args.slice <= args.seconds
        or args.warmup < 0
        or args.export_rows < 10
    ):
        parser.error(
            "--ingest-runs >= 1, --clients >= 1, --seconds > 0, 0 < --slice <= --seconds, --warmup >= 0 and"
            " --export-rows >= 10 are required"
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
            "slice_s": args.slice,
            "auth": args.auth,
        },
        "targets": {
            "ingest_writes_per_s": TARGET_WRITES_PER_S,
            "ingest_p99_ms": TARGET_P99_MS,
            "ingest_clients": TARGET_CLIENTS,
            "ingest_auth_ratio": TARGET_AUTH_RATIO,
            "export_s_per_million_rows": TARGET_EXPORT_S_PER_MILLION,
            "export_flat_memory_ratio": FLAT_MEMORY_RATIO,
        },
    }
    print(f"llm-feedback-loop benchmark: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="llmfl-bench-", dir=args.workdir) as scratch:
        workdir = Path(scratch)
        if not args.skip_ingest:
            modes = {"both": [AUTH_OFF, AUTH_ON], "on": [AUTH_ON], "off": [AUTH_OFF]}[args.auth]
            slices = max(1, round(args.seconds / args.slice))
            print(
                f"\n== Ingest: POST /feedback, {args.clients} closed-loop keep-alive clients, {args.seconds:g} s per"
                f" mode and run (+{args.warmup:g} s warm-up), {args.ingest_runs} run(s)"
                f"\n   modes: {', '.join(MODE_LABELS[mode] for mode in modes)}; one server each, both up at once,"
                f" taking turns in {slices} slices of {args.seconds / slices:.1f} s each (off, on, on, off, ...)"
                + (
                    "\n   keys: each client has its own annotator's key; the server is killed (SIGKILL) at the end of"
                    " its last slice, every client still posting"
                    if AUTH_ON in modes
                    else ""
                )
            )
            runs: list[IngestResult] = []
            for number in range(1, args.ingest_runs + 1):
                run_dir = workdir / f"ingest-{number}"
                run_dir.mkdir()
                results = bench_ingest(run_dir, modes, args.clients, args.seconds, args.slice, args.warmup)
                for result in results:
                    print_ingest(number, result)
                    ok &= result.durable and result.errors == 0
                print_run_ratio(results)
                runs.extend(results)
            summary = print_ingest_summary(runs)
            report["ingest"] = [asdict(run) for run in runs]
            report["ingest_summary"] = summary
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
