"""`llmfl serve` as a user starts it: a real process on a real port, answering at once, on SQLite, to the
key of an admin made in the database it created (as `llmfl keys create` would)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.accounts import bearer, issue_keys
from tests.support.payloads import README_COMPARISON, README_RATING
from tests.support.postgres import free_port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, float, subprocess.Popen, dict[str, str]]]:
    """(base URL, working folder, seconds to start, the process, an admin's Authorization header)."""
    port = free_port()
    # No DATABASE_URL: the default, a SQLite file under ./data/ of the working folder.
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_feedback_loop", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None:
                    raise AssertionError(process.stdout.read().decode()) from None  # type: ignore[union-attr]
                if time.monotonic() - started > 30:
                    raise
                time.sleep(0.1)
        startup_seconds = time.monotonic() - started
        # The key is made after start-up, in the database the server created itself.
        admin = bearer(issue_keys(f"sqlite:///{tmp_path}/data/llmfl.db")["admin"])
        yield base, tmp_path, startup_seconds, process, admin
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def post(url: str, body: dict, headers: dict[str, str]) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"} | headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201
        return json.loads(response.read())


def get_text(url: str, headers: dict[str, str]) -> str:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
        return response.read().decode("utf-8")


def test_serve_starts_fast_on_sqlite_under_data_and_takes_the_original_payloads(served) -> None:
    base, folder, startup_seconds, _, admin = served
    assert startup_seconds < 15  # no model is loaded
    assert (folder / "data" / "llmfl.db").exists()
    with pytest.raises(urllib.error.HTTPError, match="401"):
        post(f"{base}/feedback", README_RATING, {})  # nobody signed in
    assert post(f"{base}/feedback", README_RATING, admin)["message"] == "Feedback saved"
    assert post(f"{base}/rlhf-feedback", README_COMPARISON, admin)["message"] == "RLHF feedback saved"
    assert get_text(f"{base}/feedback/export", admin) == (
        '{"prompt":"Apa itu Kubernetes?","completion":"Kubernetes adalah sistem orkestrasi kontainer."}\n'
    )
    assert get_text(f"{base}/rlhf-feedback/export", admin) == (
        '{"prompt":"Apa itu Kubernetes?",'
        '"chosen":"Kubernetes digunakan untuk mengelola container dan deployment.",'
        '"rejected":"Kubernetes adalah sistem orkestrasi kontainer."}\n'
    )
    assert "swagger" in get_text(f"{base}/docs", {}).lower()


def test_acknowledged_writes_survive_a_killed_server(served) -> None:
    base, folder, _, process, admin = served

    def rate(i: int) -> int:
        return post(f"{base}/feedback", {"prompt": f"prompt {i}", "response": "r", "rating": "up"}, admin)["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        acknowledged = set(pool.map(rate, range(200)))
    process.kill()  # no shutdown: only what reached the disk survives
    process.wait(timeout=10)
    with sqlite3.connect(folder / "data" / "llmfl.db") as connection:
        stored = {row[0] for row in connection.execute("SELECT id FROM ratings")}
    assert acknowledged <= stored
