"""Runs from the API wait for one of MAX_CONCURRENT_RUNS slots, are reaped as soon as they end (no zombie
processes), can be stopped while they wait, and start with an environment that holds none of the service's
secrets. Observed on the real processes: the service's children, and their /proc/PID/environ."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from fastapi.testclient import TestClient

from tests.api.test_runs import fast, runs_service, wait_for_status
from tests.training.conftest import write_export

SECRETS = {
    "CHAT_PROVIDER_API_KEY": "sk-chat-provider-secret",
    "OPENROUTER_API_KEY": "sk-openrouter-secret",
    "JUDGE_API_KEY": "judge-secret",
    "LLMFL_API_KEY": "llmfl_abc_secret",
    "HF_TOKEN": "hf_secret_token",
    "SOME_SERVICE_SECRET": "another-secret",
    "WANDB_API_KEY": "wandb-secret",  # only a run that reports to wandb gets it
}


def training_children() -> list[psutil.Process]:
    """This process's children that are training processes (`llmfl train --run-id N`) and not yet ended."""
    found = []
    for child in psutil.Process().children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "--run-id" in child.cmdline():
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


@contextmanager
def watching_children() -> Iterator[dict[str, object]]:
    """Sample the training children every 20 ms while the block runs: the most alive at once, and every pid."""
    seen: dict[str, object] = {"most": 0, "pids": set()}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            alive = training_children()
            seen["most"] = max(int(seen["most"]), len(alive))  # type: ignore[call-overload]
            seen["pids"].update(child.pid for child in alive)  # type: ignore[attr-defined]
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join()


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(entry.split("=", 1) for entry in raw.decode().split("\0") if "=" in entry)


def reaped(pid: int, exit_within: float = 60.0, reap_within: float = 2.0) -> bool:
    """Whether `pid` ends within `exit_within` seconds and, once ended, is reaped (gone, not a zombie) within
    `reap_within` seconds, without our reaping it."""
    deadline, ended_at = time.monotonic() + exit_within, None
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                ended_at = ended_at or time.monotonic()
                if time.monotonic() - ended_at > reap_within:
                    return False
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def limited_client(
    database_url: str, tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    with runs_service(database_url, tmp_path, tiny_model, max_concurrent_runs=1) as client:
        yield client


def test_one_run_at_a_time_waiting_runs_stop_and_children_get_no_secrets(
    limited_client: TestClient, tmp_path: Path
) -> None:
    client = limited_client
    data = write_export(tmp_path / "exports", "sft", count=16)
    jobs = client.app.state.service.jobs  # type: ignore[attr-defined]
    with watching_children() as seen:
        first = client.post("/v1/runs", json=fast(data, max_steps=100000, save_steps=5, lora=True)).json()
        second = client.post("/v1/runs", json=fast(data, max_steps=2, output_dir="second")).json()
        third = client.post("/v1/runs", json=fast(data, max_steps=2)).json()
        assert [run["status"] for run in (first, second, third)] == ["queued"] * 3

        # A waiting run stops without ever starting.
        stopped = client.post(f"/v1/runs/{third['id']}/stop")
        assert stopped.status_code == 202, stopped.text
        assert stopped.json()["status"] == "interrupted" and stopped.json()["started_at"] is None
        assert client.post(f"/v1/runs/{third['id']}/resume").status_code == 409  # no checkpoint: nothing to resume

        output_dir = Path(first["output_dir"])
        deadline = time.monotonic() + 120
        while not (output_dir / "checkpoint-5").is_dir():
            assert time.monotonic() < deadline, client.get(f"/v1/runs/{first['id']}/log").text
            assert client.get(f"/v1/runs/{first['id']}").json()["status"] in ("queued", "running")
            time.sleep(0.1)
        assert client.get(f"/v1/runs/{first['id']}").json()["status"] == "running"
        assert client.get(f"/v1/runs/{second['id']}").json()["status"] == "queued"  # the one slot is taken
        (first_pid,) = jobs.running().values()
        assert [child.pid for child in training_children()] == [first_pid]

        environment = environ_of(first_pid)
        assert not set(SECRETS) & set(environment)
        assert not any(secret in "\0".join(environment.values()) for secret in SECRETS.values())
        assert environment["HF_HUB_OFFLINE"] == "1" and environment["TOKENIZERS_PARALLELISM"] == "false"
        assert environment["DATABASE_URL"] and environment["PATH"] == os.environ["PATH"]

        assert client.post(f"/v1/runs/{first['id']}/stop").status_code == 202
        assert wait_for_status(client, first["id"], {"interrupted", "failed"})["status"] == "interrupted"
        assert reaped(first_pid)

        # The slot freed: the second run starts on its own, in the folder it named, and completes.
        finished = wait_for_status(client, second["id"], {"completed", "failed"})
        assert finished["status"] == "completed", client.get(f"/v1/runs/{second['id']}/log").text
        assert Path(finished["output_dir"]) == (tmp_path / "checkpoints" / "second").resolve()
        (second_pid,) = seen["pids"] - {first_pid}  # type: ignore[operator]
        assert reaped(second_pid)  # by the scheduler: listing runs reaps nothing
        deadline = time.monotonic() + 1
        while jobs.running() and time.monotonic() < deadline:  # the scheduler drops it just after reaping it
            time.sleep(0.01)
        assert jobs.running() == {}

    assert seen["most"] == 1  # never two training processes at once
    assert len(seen["pids"]) == 2  # type: ignore[arg-type]  # the third run never started
    assert all(reaped(pid) for pid in seen["pids"])  # type: ignore[attr-defined]
    assert not Path(third["output_dir"]).exists()
    assert client.get(f"/v1/runs/{third['id']}").json()["status"] == "interrupted"
