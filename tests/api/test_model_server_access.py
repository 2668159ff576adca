"""Who may use the inference server: the feedback service's keys, per route; reloads name registered versions
only; the same body limit as the service; prompts tokenized off the event loop."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from llm_feedback_loop.api.model_server import create_serving_app
from llm_feedback_loop.auth.roles import Permission
from llm_feedback_loop.models.registry import add_version
from llm_feedback_loop.serving.engine import GenerationEngine
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.engine import create_engine, create_session_factory
from tests.support.accounts import ANONYMOUS, bearer, issue_keys

CHAT = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
# One valid request per route; each is sent by every role.
REQUESTS = {
    ("GET", "/v1/models"): None,
    ("POST", "/v1/chat/completions"): CHAT,
    ("POST", "/v1/completions"): {"prompt": "Hi", "max_tokens": 2},
    ("POST", "/generate"): {"prompt": "Hi", "max_tokens": 2},
    ("POST", "/admin/reload"): {},
}


@pytest.fixture
def serving(settings: Settings, tiny_model: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The inference server in-process on the tiny model, and {role: API key} of its database."""
    keys = issue_keys(settings.database_url)
    app = create_serving_app(settings.model_copy(update={"base_model": str(tiny_model)}), device="cpu")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, keys


def register(database_url: str, source: Path, name: str) -> int:
    """A version added to the registry (not activated), as `llmfl models add` does; returns its id."""

    async def add() -> int:
        engine = create_engine(database_url)
        try:
            async with create_session_factory(engine)() as session:
                version = await add_version(session, str(source), name=name, method="sft", activate=False)
                await session.commit()
                return version.id
        finally:
            await engine.dispose()

    return asyncio.run(add())


def call(client: TestClient, method: str, path: str, body: dict | None, headers: dict[str, str]) -> int:
    return client.request(method, path, json=body, headers=headers).status_code


def test_every_route_but_health_states_who_may_call_it(serving: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = serving
    routes = {
        (method, route.path): route
        for route in client.app.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert set(routes) == set(REQUESTS) | {("GET", "/health")}
    needed = {
        key: {p for dependency in route.dependant.dependencies for p in getattr(dependency.call, "permissions", ())}
        for key, route in routes.items()
    }
    assert needed[("GET", "/health")] == set()
    assert needed[("GET", "/v1/models")] == set(Permission)  # any signed-in role
    assert needed[("POST", "/admin/reload")] == {Permission.manage}
    for generation in ("/v1/chat/completions", "/v1/completions", "/generate"):
        assert needed[("POST", generation)] == {Permission.chat}


def test_anonymous_callers_get_401_everywhere_but_health(serving: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = serving
    for (method, path), body in REQUESTS.items():
        response = client.request(method, path, json=body, headers=ANONYMOUS)
        assert response.status_code == 401, (method, path)
        assert "API key" in response.json()["message"] and response.headers["www-authenticate"] == "Bearer"
    wrong = client.get("/v1/models", headers=bearer("llmfl_abcdefgh_not-a-real-secret"))
    assert wrong.status_code == 401 and "not valid" in wrong.json()["message"]
    assert client.get("/health", headers=ANONYMOUS).json() == {"status": "ok", "model": "tiny"}


def test_each_role_may_do_what_its_role_allows(serving: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = serving
    allowed = {
        "admin": set(REQUESTS),
        "annotator": {
            ("GET", "/v1/models"),
            ("POST", "/v1/chat/completions"),
            ("POST", "/v1/completions"),
            ("POST", "/generate"),
        },
        "viewer": {("GET", "/v1/models")},
    }
    for role, key in keys.items():
        for (method, path), body in REQUESTS.items():
            status = call(client, method, path, body, bearer(key))
            assert status == (200 if (method, path) in allowed[role] else 403), (role, method, path, status)
    refused = client.post("/v1/chat/completions", json=CHAT, headers=bearer(keys["viewer"]))
    assert "viewer role may not" in refused.json()["message"]
    refused = client.post("/admin/reload", json={}, headers=bearer(keys["annotator"]))
    assert "annotator role may not" in refused.json()["message"]


def test_a_reload_takes_registered_versions_only(
    serving: tuple[TestClient, dict[str, str]], settings: Settings, tiny_model: Path, tmp_path: Path
) -> None:
    client, keys = serving
    admin = bearer(keys["admin"])
    copy = shutil.copytree(tiny_model, tmp_path / "tiny-copy")
    for not_registered in (str(copy), "HuggingFaceTB/SmolLM2-135M-Instruct", "../../etc"):
        response = client.post("/admin/reload", json={"model": not_registered}, headers=admin)
        assert response.status_code == 422, not_registered
        message = response.json()["message"]
        assert message.startswith("model: ") and "not a registered version" in message and "llmfl models add" in message
    assert client.post("/admin/reload", json={"model": ""}, headers=admin).status_code == 422
    assert client.post("/admin/reload", json={"model": "tiny", "path": "/x"}, headers=admin).status_code == 422
    assert client.get("/v1/models", headers=admin).json()["data"][0]["id"] == "tiny"  # still the same model

    version_id = register(settings.database_url, copy, "tiny-v2")
    switched = client.post("/admin/reload", json={"model": "tiny-v2"}, headers=admin)
    assert switched.status_code == 200
    assert switched.json() == {"model": "tiny-v2", "version_id": version_id, "source": str(copy)}
    assert client.get("/v1/models", headers=admin).json()["data"][0]["id"] == "tiny-v2"
    answer = client.post("/v1/chat/completions", json=CHAT | {"model": "tiny-v2"}, headers=bearer(keys["annotator"]))
    assert answer.status_code == 200 and answer.json()["model"] == "tiny-v2"
    back = client.post("/admin/reload", json={}, headers=admin)  # no model: the active version
    assert back.status_code == 200 and back.json()["model"] == "tiny"


def test_a_registered_version_whose_files_are_gone_keeps_the_old_model(
    serving: tuple[TestClient, dict[str, str]], settings: Settings, tmp_path: Path
) -> None:
    client, keys = serving
    register(settings.database_url, tmp_path / "deleted", "gone")
    response = client.post("/admin/reload", json={"model": "gone"}, headers=bearer(keys["admin"]))
    assert response.status_code == 409 and response.json()["message"].startswith("model: ")
    assert client.get("/v1/models", headers=bearer(keys["admin"])).json()["data"][0]["id"] == "tiny"


def test_a_body_over_the_limit_is_413_before_anything_reads_it(serving: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = serving
    huge = {"messages": [{"role": "user", "content": "word " * 1_000_000}]}  # 5 MB
    for headers in (bearer(keys["annotator"]), ANONYMOUS):
        response = client.post("/v1/chat/completions", json=huge, headers=headers)
        assert response.status_code == 413 and "MAX_BODY_BYTES" in response.json()["message"]


def test_prompts_are_tokenized_off_the_event_loop(
    serving: tuple[TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, keys = serving
    where: list[str] = []

    def spying(method_name: str):
        original = getattr(GenerationEngine, method_name)

        def spy(self: GenerationEngine, value: object) -> list[int]:
            try:
                asyncio.get_running_loop()
                where.append(f"{method_name} on the event loop")
            except RuntimeError:
                where.append(f"{method_name} off the loop")
            return original(self, value)

        return spy

    for name in ("encode_chat", "encode_text"):
        monkeypatch.setattr(GenerationEngine, name, spying(name))
    annotator = bearer(keys["annotator"])
    for path in ("/v1/chat/completions", "/v1/completions", "/generate"):
        assert call(client, "POST", path, REQUESTS[("POST", path)], annotator) == 200
    assert where == ["encode_chat off the loop", "encode_text off the loop", "encode_chat off the loop"]
