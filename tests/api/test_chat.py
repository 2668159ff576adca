"""Chat in the feedback service: the original `POST /chat` and `/v1/chat`, local and remote providers,
every answer stored as a generation with its model version, and provider failures as 502/504."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from llm_feedback_loop.settings import Settings
from tests.support.accounts import admin_client, issue_keys
from tests.support.fake_openai import fake_openai_server
from tests.support.servers import running_llmfl


def service(settings: Settings, **overrides: object) -> TestClient:
    return admin_client(settings.model_copy(update=overrides))


@pytest.fixture
def local_chat(settings: Settings, tiny_model: Path) -> Iterator[TestClient]:
    with service(settings, base_model=str(tiny_model)) as client:
        yield client


def generations(client: TestClient) -> list[dict]:
    return client.get("/v1/generations").json()["items"]


def test_original_local_chat_answers_and_logs_the_generation(local_chat: TestClient) -> None:
    response = local_chat.post("/chat", params={"provider": "local"}, json={"prompt": "Apa itu Kubernetes?"})
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body["response"], str)
    (logged,) = generations(local_chat)
    assert logged["id"] == body["generation_id"] and logged["response"] == body["response"]
    assert logged["model_version"] == "tiny" and logged["prompt"] == "Apa itu Kubernetes?"
    rating = local_chat.post(
        "/v1/ratings", json={"prompt": "Apa itu Kubernetes?", "rating": "up", "generation_id": body["generation_id"]}
    )
    assert rating.status_code == 201 and rating.json()["response"] == body["response"]


def test_without_a_remote_provider_every_chat_is_local(local_chat: TestClient) -> None:
    body = local_chat.post("/chat", params={"provider": "openrouter", "count": 3}, json={"prompt": "Halo"}).json()
    assert len(body["responses"]) == 3 and body["failed"] == 0
    assert {g["model_version"] for g in generations(local_chat)} == {"tiny"}


def test_v1_chat_gives_n_candidates_with_generation_ids(local_chat: TestClient) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    body = local_chat.post("/v1/chat", json={"messages": messages, "n": 3, "max_tokens": 8, "annotator": "ana"}).json()
    ids = [c["generation_id"] for c in body["candidates"]]
    assert len(set(ids)) == 3
    stored = {g["id"]: g for g in generations(local_chat)}
    assert all(stored[i]["messages"] == messages and stored[i]["annotator"] == "ana" for i in ids)
    assert stored[ids[0]]["parameters"]["max_tokens"] == 8


def test_bad_chat_requests_are_4xx(local_chat: TestClient) -> None:
    assert local_chat.post("/chat", json={"prompt": " "}).status_code == 422
    assert local_chat.post("/chat", params={"count": 4}, json={"prompt": "x"}).status_code == 422
    too_long = local_chat.post("/v1/chat", json={"prompt": "x", "max_tokens": 4000})
    assert too_long.status_code == 400 and "context" in too_long.json()["message"]
    assert local_chat.post("/v1/chat", json={"prompt": "x", "temperature": 9}).status_code == 422
    assert generations(local_chat) == []


def test_remote_and_local_providers_are_our_own_inference_server_with_its_key(
    settings: Settings, tiny_model: Path, tmp_path: Path
) -> None:
    """CHAT_PROVIDER_URL and LOCAL_INFERENCE_URL at a `llmfl serve-model`, each with a key of its database."""
    database_url = f"sqlite:///{tmp_path}/server.db"
    key = issue_keys(database_url)["annotator"]  # the inference server takes the keys of its own database
    env = {"DATABASE_URL": database_url, "BASE_MODEL": str(tiny_model)}
    with running_llmfl(["serve-model"], tmp_path, env) as base:
        with service(settings, chat_provider_url=f"{base}/v1", chat_provider_api_key=key) as client:
            body = client.post("/chat", params={"count": 2}, json={"prompt": "Halo"}).json()
            assert len(body["responses"]) == 2
            assert {g["model_version"] for g in generations(client)} == {"tiny"}
        with service(settings, local_inference_url=f"{base}/v1", local_inference_api_key=key) as client:
            answer = client.post("/v1/chat", json={"prompt": "Halo", "provider": "local", "max_tokens": 4})
            assert answer.status_code == 200 and answer.json()["candidates"][0]["model_version"] == "tiny"
        with service(settings, local_inference_url=f"{base}/v1") as client:  # no key: refused, and said so
            refused = client.post("/v1/chat", json={"prompt": "Halo", "provider": "local"})
            assert refused.status_code == 502
            assert refused.json()["message"] == (
                f"the local chat provider failed: {base}/v1: cannot tell which model it serves: "
                "it answered 401 Unauthorized"
            )


def test_partial_failures_keep_the_answers_that_came(settings: Settings) -> None:
    with fake_openai_server(fail_every=2) as url, service(settings, chat_provider_url=url) as client:
        body = client.post("/chat", params={"count": 3}, json={"prompt": "Halo"}).json()
        assert len(body["responses"]) == 2 and body["failed"] == 1
        assert {g["model_version"] for g in generations(client)} == {"fake-model-v3"}


def test_an_unreachable_provider_is_a_502(settings: Settings) -> None:
    with service(settings, chat_provider_url="http://127.0.0.1:9/v1") as client:
        response = client.post("/chat", params={"count": 2}, json={"prompt": "Halo"})
        assert response.status_code == 502
        assert "127.0.0.1:9" in response.json()["message"]
        assert generations(client) == []


def test_a_provider_that_times_out_is_a_504(settings: Settings) -> None:
    with (
        fake_openai_server(hang_s=2.0) as url,
        service(settings, chat_provider_url=url, chat_provider_model="m", chat_timeout_s=0.3) as client,
    ):
        response = client.post("/chat", params={"count": 2}, json={"prompt": "Halo"})
        assert response.status_code == 504
        assert "timed out" in response.json()["message"]


def test_v1_chat_stream_sends_deltas_then_stored_answers(local_chat: TestClient) -> None:
    body = {"prompt": "Apa itu Kubernetes?", "n": 2, "max_tokens": 12, "annotator": "ana"}
    with local_chat.stream("POST", "/v1/chat/stream", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        events = [json.loads(line) for line in response.iter_lines() if line]
    done = {event["index"]: event for event in events if event.get("done")}
    assert set(done) == {0, 1}
    texts = {index: "".join(e["delta"] for e in events if e["index"] == index and "delta" in e) for index in (0, 1)}
    assert sum(1 for event in events if "delta" in event) > 2  # streamed piece by piece, not whole
    stored = {g["id"]: g for g in generations(local_chat)}
    for index, event in done.items():
        logged = stored[event["generation_id"]]
        assert logged["response"] == texts[index] and logged["model_version"] == "tiny" == event["model_version"]
        assert logged["annotator"] == "ana"
    too_long = local_chat.post("/v1/chat/stream", json={"prompt": "x", "max_tokens": 4000})
    assert too_long.status_code == 400


def test_chat_follows_a_promoted_version(local_chat: TestClient, tiny_model: Path, tmp_path: Path) -> None:
    """After `llmfl models promote`, the next chat answers come from the promoted version."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from llm_feedback_loop.models.registry import add_version

    first = local_chat.post("/v1/chat", json={"prompt": "hi", "max_tokens": 4}).json()["candidates"][0]
    assert first["model_version"] == "tiny"
    copy = shutil.copytree(tiny_model, tmp_path / "tiny-copy")
    engine = local_chat.app.state.service.engine

    async def promote() -> None:
        async with AsyncSession(engine) as session:
            await add_version(session, str(copy), name="promoted", method="sft", activate=True)

    local_chat.portal.call(promote)  # on the app's own event loop, as another process's promotion would land
    after = local_chat.post("/v1/chat", json={"prompt": "hi", "max_tokens": 4}).json()["candidates"][0]
    assert after["model_version"] == "promoted"
