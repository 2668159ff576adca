"""`llmfl users` and `llmfl keys`, and the first start of `llmfl serve`: an admin and a one-time sign-in link."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from llm_feedback_loop.api.app import create_app
from llm_feedback_loop.cli import app
from llm_feedback_loop.settings import get_settings
from tests.support.postgres import free_port

runner = CliRunner()


@pytest.fixture(autouse=True)
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.output


def test_a_created_key_is_printed_alone_on_the_last_line_and_works() -> None:
    code, stdout, output = invoke("keys", "create", "--role", "annotator", "--user", "alice", "--name", "script")
    assert code == 0, output
    key = stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"llmfl_[a-z2-9]{8}_[A-Za-z0-9_-]{40,}", key)
    code, stdout, _ = invoke("keys", "list")
    prefix = key.split("_")[1]
    assert code == 0 and f"{prefix}\talice\tannotator\tactive\tnever used\tscript" in stdout
    assert key.split("_", 2)[2] not in stdout  # the secret is never shown again

    from fastapi.testclient import TestClient

    with TestClient(create_app(get_settings())) as client:
        me = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200 and me.json() == {
            "name": "alice",
            "role": "annotator",
            "via": "key",
            "permissions": ["annotate", "chat", "read_own"],
        }
    code, stdout, _ = invoke("keys", "list")
    assert "never used" not in stdout  # last use is recorded
    code, _, output = invoke("keys", "revoke", prefix)
    assert code == 0 and f"revoked {prefix}" in output
    with TestClient(create_app(get_settings())) as client:
        assert client.get("/v1/auth/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_keys_default_to_a_user_named_after_the_role_and_respect_its_role() -> None:
    code, stdout, output = invoke("keys", "create", "--role", "viewer")
    assert code == 0, output
    code, stdout, _ = invoke("users", "list")
    assert "viewer\tviewer\tno password" in stdout
    code, _, output = invoke("keys", "create", "--role", "admin", "--user", "viewer")
    assert code == 1 and "cannot hold a key with the admin role" in output
    code, _, output = invoke("keys", "create", "--role", "owner")
    assert code == 1 and "unknown role 'owner'" in output
    code, _, output = invoke("keys", "revoke", "nosuchkey")
    assert code == 1 and "no API key" in output


def test_users_passwords_and_login_links() -> None:
    code, _, output = invoke("users", "add", "bob", "--role", "annotator", "--password-stdin", stdin="hunter2hunter2\n")
    assert code == 0 and "created annotator bob" in output
    code, _, output = invoke("users", "add", "bob", "--role", "viewer")
    assert code == 1 and "exists already" in output
    code, _, output = invoke("users", "add", "x y", "--role", "viewer")
    assert code == 1 and "not allowed" in output
    code, _, output = invoke("users", "passwd", "bob", "--password-stdin", stdin="short\n")
    assert code == 1 and "8 to 1000 characters" in output
    code, stdout, output = invoke("users", "login-link", "bob", "--url", "http://feedback.example:3000")
    assert code == 0, output
    link = stdout.strip().splitlines()[-1]
    assert link.startswith("http://feedback.example:3000/login?token=")

    from fastapi.testclient import TestClient

    with TestClient(create_app(get_settings())) as client:
        login = client.post("/v1/auth/login", json={"name": "bob", "password": "hunter2hunter2"})
        assert login.status_code == 200
        code, _, _ = invoke("users", "disable", "bob")
        assert code == 0
        client.app.state.auth.forget()  # as a disable through the API does; from another process: within 10 s
        assert client.get("/v1/auth/me").status_code == 401
        assert client.post("/v1/auth/login", json={"name": "bob", "password": "hunter2hunter2"}).status_code == 401


def test_the_first_start_creates_an_admin_and_prints_a_login_link(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url)
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_feedback_loop", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        link, printed = None, []
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        while link is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            printed.append(line)
            if found := re.search(r"http://127\.0\.0\.1:\d+/login\?token=\S+", line):
                link = found.group(0)
        assert link, f"the first start prints a sign-in link; it printed: {''.join(printed)}"
        assert link.startswith(f"http://127.0.0.1:{port}/login?token=")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as browser:
            for _ in range(100):
                try:
                    if browser.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            assert browser.get("/", follow_redirects=False).headers["location"] == "/login?next=/"
            signed_in = browser.get(link, follow_redirects=False)
            assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
            assert browser.get("/v1/auth/me").json()["role"] == "admin"
            assert browser.get("/").status_code == 200  # the annotate page, for the newcomer
            again = httpx.get(link, follow_redirects=False)
            assert again.headers["location"] == "/login?expired=1"  # the link works once
    finally:
        process.terminate()
        process.wait(timeout=20)
    code, stdout, _ = invoke("users", "list")
    assert code == 0 and stdout.startswith("admin\tadmin\t")


def test_a_public_bind_without_authentication_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_REQUIRED", "false")
    get_settings.cache_clear()
    code, _, output = invoke("serve", "--host", "0.0.0.0")
    assert code == 1 and "AUTH_REQUIRED=false" in output and "llmfl keys create" in output
    code, _, output = invoke("serve-model", "--host", "192.168.1.20")
    assert code == 1 and "AUTH_REQUIRED=false" in output
