"""`llmfl serve-model` as a real process on the tiny model, driven by the official `openai` client with an API
key of the server's database (the annotator's: generation; the admin's: reloads)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.support.accounts import bearer, issue_keys
from tests.support.servers import running_llmfl


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """The server's base URL, its folder and {role: API key} of its database."""
    workdir = tmp_path_factory.mktemp("serve-model")
    database_url = f"sqlite:///{workdir}/registry.db"
    keys = issue_keys(database_url)  # the server and this test share the database, as `llmfl keys create` would
    env = {"DATABASE_URL": database_url, "BASE_MODEL": str(tiny_model)}
    with running_llmfl(["serve-model", "--watch-registry", "0"], workdir, env) as base:
        yield base, workdir, keys


@pytest.fixture
def client(server: tuple[str, Path, dict[str, str]]) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server[0]}/v1", api_key=server[2]["annotator"], max_retries=0)


def served_name(client: openai.OpenAI) -> str:
    return client.models.list().data[0].id


def activate_new_version(registry: Path, name: str, source: Path, method: str) -> None:
    """What training plus `llmfl models activate` leave in the registry, written behind the server's back."""
    with sqlite3.connect(registry) as connection:
        connection.execute("UPDATE model_versions SET status = 'retired'")
        connection.execute(
            "INSERT INTO model_versions (created_at, updated_at, name, source, method, status) "
            "VALUES ('2026-01-01 00:00:00', '2026-01-01 00:00:00', ?, ?, ?, 'active')",
            (name, str(source), method),
        )


def test_lists_the_active_version_registered_on_first_use(
    client: openai.OpenAI, server: tuple[str, Path, dict[str, str]]
) -> None:
    assert served_name(client) == "tiny"
    with sqlite3.connect(server[1] / "registry.db") as connection:
        rows = connection.execute("SELECT name, method, status FROM model_versions").fetchall()
    assert rows == [("tiny", "base", "active")]


def test_chat_completion_with_n_and_usage(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model=served_name(client), messages=[{"role": "user", "content": "Hello"}], n=3, max_tokens=8, temperature=1.0
    )
    assert [choice.index for choice in response.choices] == [0, 1, 2]
    assert all(choice.finish_reason in ("stop", "length") for choice in response.choices)
    assert response.usage.prompt_tokens > 0
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_streamed_chat_adds_up_to_the_same_answer(client: openai.OpenAI) -> None:
    model = served_name(client)
    messages = [{"role": "user", "content": "Say something"}]
    whole = client.chat.completions.create(model=model, messages=messages, max_tokens=10, temperature=0)
    stream = client.chat.completions.create(
        model=model,
        messages=messages,
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces) == whole.choices[0].message.content
    assert finish == whole.choices[0].finish_reason
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens


def test_completions_with_seed_and_stop(client: openai.OpenAI) -> None:
    model = served_name(client)
    first = client.completions.create(model=model, prompt="The capital of", max_tokens=8, seed=7, temperature=1.0)
    again = client.completions.create(model=model, prompt="The capital of", max_tokens=8, seed=7, temperature=1.0)
    assert first.choices[0].text == again.choices[0].text
    greedy = client.completions.create(model=model, prompt="The capital of", max_tokens=12, temperature=0)
    text = greedy.choices[0].text
    stop = text[3:5] or text[:1]
    stopped = client.completions.create(model=model, prompt="The capital of", max_tokens=12, temperature=0, stop=[stop])
    assert stopped.choices[0].finish_reason == "stop" and stop not in stopped.choices[0].text


def test_the_original_generate_request(server: tuple[str, Path, dict[str, str]]) -> None:
    request = urllib.request.Request(
        f"{server[0]}/generate",
        data=json.dumps({"prompt": "Apa itu Kubernetes?", "max_tokens": 16}).encode(),
        headers={"Content-Type": "application/json"} | bearer(server[2]["annotator"]),
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert isinstance(json.loads(response.read())["response"], str)


def test_the_sdk_needs_a_valid_key(server: tuple[str, Path, dict[str, str]]) -> None:
    base, _, keys = server
    with pytest.raises(openai.AuthenticationError, match="not valid"):
        openai.OpenAI(base_url=f"{base}/v1", api_key="llmfl_abcdefgh_wrong", max_retries=0).models.list()
    viewer = openai.OpenAI(base_url=f"{base}/v1", api_key=keys["viewer"], max_retries=0)
    assert viewer.models.list().data[0].id == "tiny"  # any role may see what is served
    with pytest.raises(openai.PermissionDeniedError, match="viewer role may not"):
        viewer.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "x"}], max_tokens=2)


def test_bad_parameters_are_4xx_with_a_message(client: openai.OpenAI) -> None:
    model = served_name(client)
    with pytest.raises(openai.UnprocessableEntityError, match="temperature"):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], temperature=3)
    with pytest.raises(openai.UnprocessableEntityError, match="n"):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], n=50)
    with pytest.raises(openai.BadRequestError, match="context of 512 tokens"):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], max_tokens=5000)
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])


def test_switching_to_a_newly_activated_version_drops_no_request(
    client: openai.OpenAI, server: tuple[str, Path, dict[str, str]], tiny_model: Path
) -> None:
    base, workdir, keys = server
    second = workdir / "tiny-v2"
    shutil.copytree(tiny_model, second)
    activate_new_version(workdir / "registry.db", "tiny-v2", second, "sft")
    model = served_name(client)
    failures: list[Exception] = []

    def keep_asking() -> None:
        for _ in range(6):
            try:
                client.chat.completions.create(
                    model=served_name(client), messages=[{"role": "user", "content": "hi"}], max_tokens=16
                )
            except Exception as error:  # counted, not raised: the thread reports through `failures`
                failures.append(error)

    threads = [threading.Thread(target=keep_asking) for _ in range(4)]
    for thread in threads:
        thread.start()
    request = urllib.request.Request(
        f"{base}/admin/reload", data=b"{}", headers={"Content-Type": "application/json"} | bearer(keys["admin"])
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert json.loads(response.read())["model"] == "tiny-v2"
    for thread in threads:
        thread.join()
    assert model == "tiny"
    assert served_name(client) == "tiny-v2"
    # Nothing fails, but a request that named the old version just after the switch (404, once per thread at most).
    assert not [f for f in failures if not isinstance(f, openai.NotFoundError)]
    assert len(failures) <= len(threads)


def test_watching_the_registry_switches_without_a_reload_call(tiny_model: Path, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/registry.db"
    key = issue_keys(database_url)["viewer"]
    env = {"DATABASE_URL": database_url, "BASE_MODEL": str(tiny_model)}
    with running_llmfl(["serve-model", "--watch-registry", "0.3"], tmp_path, env) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)
        assert served_name(client) == "tiny"
        activate_new_version(tmp_path / "registry.db", "tiny-dpo", tiny_model, "dpo")
        deadline = time.monotonic() + 30
        while served_name(client) != "tiny-dpo":
            assert time.monotonic() < deadline, "the server did not switch to the activated version"
            time.sleep(0.2)


def test_engine_vllm_without_vllm_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """One line, before any model loads (vLLM is not installed on a CPU machine)."""
    import importlib.util

    from typer.testing import CliRunner

    from llm_feedback_loop.cli.app import app

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    result = CliRunner().invoke(app, ["serve-model", "--engine", "vllm"])
    assert result.exit_code == 1
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert "vLLM, which is not installed" in " ".join(result.output.split()) and "pip install vllm" in result.output
    assert len(" ".join(lines)) < 400 and "Traceback" not in result.output
