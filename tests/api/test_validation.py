"""Every bad input gets a 4xx whose message names the field, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.payloads import README_COMPARISON, README_RATING


def stored_rows(client: TestClient) -> int:
    return client.get("/v1/feedback").json()["total"] + client.get("/v1/generations").json()["total"]


def without(payload: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != key}


def two(texts: list[str]) -> list[dict[str, str]]:
    return [{"id": str(i), "text": t} for i, t in enumerate(texts)]


BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    # (case, path, body, status, text the message must contain)
    ("missing prompt", "/feedback", without(README_RATING, "prompt"), 422, "prompt"),
    ("empty prompt", "/feedback", README_RATING | {"prompt": "   "}, 422, "prompt: must not be empty"),
    ("missing response", "/feedback", without(README_RATING, "response"), 422, "response"),
    ("empty response", "/feedback", README_RATING | {"response": ""}, 422, "response: must not be empty"),
    ("rating not up/down", "/feedback", README_RATING | {"rating": "meh"}, 422, "rating"),
    ("prompt not a string", "/feedback", README_RATING | {"prompt": 5}, 422, "prompt"),
    ("NUL in text", "/feedback", README_RATING | {"response": "a\u0000b"}, 422, "response"),
    ("body not an object", "/feedback", [README_RATING], 422, "Input should be a valid dictionary"),
    (
        "one response",
        "/rlhf-feedback",
        README_COMPARISON | {"responses": two(["a"]), "ranking": [0]},
        422,
        "at least 2",
    ),
    ("no responses", "/rlhf-feedback", without(README_COMPARISON, "responses"), 422, "responses"),
    (
        "empty response text",
        "/rlhf-feedback",
        README_COMPARISON | {"responses": two(["a", " "])},
        422,
        "responses.1.text: must not be empty",
    ),
    ("ranking repeats", "/rlhf-feedback", README_COMPARISON | {"ranking": [0, 0]}, 422, "ranking must list"),
    ("ranking out of range", "/rlhf-feedback", README_COMPARISON | {"ranking": [0, 2]}, 422, "ranking must list"),
    ("ranking too short", "/rlhf-feedback", README_COMPARISON | {"ranking": [1]}, 422, "ranking must list"),
    ("ranking not ints", "/rlhf-feedback", README_COMPARISON | {"ranking": ["a", "b"]}, 422, "ranking"),
    (
        "bestIndex out of range",
        "/rlhf-feedback",
        without(README_COMPARISON, "ranking") | {"bestIndex": 2},
        422,
        "bestIndex must be between 0 and 1",
    ),
    (
        "bestIndex negative",
        "/rlhf-feedback",
        without(README_COMPARISON, "ranking") | {"bestIndex": -1},
        422,
        "bestIndex",
    ),
    (
        "bestIndex disagrees with ranking",
        "/rlhf-feedback",
        README_COMPARISON | {"bestIndex": 0},
        422,
        "bestIndex 0 disagrees with ranking",
    ),
    (
        "duplicate response ids",
        "/rlhf-feedback",
        README_COMPARISON | {"responses": [{"id": "1", "text": "a"}, {"id": "1", "text": "b"}]},
        422,
        "duplicate ids: 1",
    ),
    ("v1 rating without prompt", "/v1/ratings", {"response": "a", "rating": "up"}, 422, "prompt is required"),
    (
        "v1 messages not ending with user",
        "/v1/ratings",
        {
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
            "response": "a",
            "rating": "up",
        },
        422,
        "messages must end with a user message",
    ),
    (
        "v1 bad role",
        "/v1/ratings",
        {"messages": [{"role": "robot", "content": "hi"}], "response": "a", "rating": "up"},
        422,
        "messages.0.role",
    ),
    ("v1 unknown field", "/v1/ratings", {"prompt": "p", "response": "a", "rating": "up", "score": 3}, 422, "score"),
    (
        "v1 missing generation",
        "/v1/ratings",
        {"prompt": "p", "rating": "up", "generation_id": 999},
        422,
        "generation_id 999 does not exist",
    ),
    (
        "v1 neither response nor generation",
        "/v1/ratings",
        {"prompt": "p", "rating": "up"},
        422,
        "response is required unless generation_id",
    ),
    (
        "v1 comparison one response",
        "/v1/comparisons",
        {"prompt": "p", "responses": [{"text": "a"}], "best_index": 0},
        422,
        "at least 2",
    ),
    (
        "v1 comparison ranking",
        "/v1/comparisons",
        {"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}], "ranking": [1, 1]},
        422,
        "ranking must list",
    ),
    (
        "v1 correction empty",
        "/v1/corrections",
        {"prompt": "p", "original_response": "a", "corrected_response": ""},
        422,
        "corrected_response: must not be empty",
    ),
    ("v1 generation empty response", "/v1/generations", {"prompt": "p", "response": ""}, 422, "response"),
    ("v1 chat stop string too long", "/v1/chat", {"prompt": "p", "stop": ["a" * 201]}, 422, "stop"),
    ("v1 chat stop string empty", "/v1/chat", {"prompt": "p", "stop": [""]}, 422, "stop"),
    ("v1 chat seed beyond 64 bits", "/v1/chat", {"prompt": "p", "seed": 2**64}, 422, "seed"),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "expected"), [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_payload_is_refused_and_nothing_stored(
    client: TestClient, path: str, body: Any, status: int, expected: str
) -> None:
    before = stored_rows(client)
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert expected in response.json()["message"]
    assert stored_rows(client) == before


def test_invalid_json_is_a_400_naming_the_problem(client: TestClient) -> None:
    response = client.post("/feedback", content=b'{"prompt": "a", ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]
    assert stored_rows(client) == 0


def test_body_over_the_size_limit_is_a_413(client: TestClient) -> None:
    huge = README_RATING | {"response": "x" * 2_000_000}
    response = client.post("/feedback", json=huge)
    assert response.status_code == 413
    assert "larger than the limit" in response.json()["message"]
    assert stored_rows(client) == 0


def test_chunked_body_over_the_size_limit_is_a_413(client: TestClient) -> None:
    def chunks():
        yield b'{"prompt": "p", "rating": "up", "response": "'
        for _ in range(40):
            yield b"y" * 50_000
        yield b'"}'

    response = client.post("/feedback", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert stored_rows(client) == 0


def test_unknown_export_kind_and_bad_options_are_422(client: TestClient) -> None:
    assert client.get("/v1/export/ppo").status_code == 422
    response = client.get("/v1/export/dpo", params={"strategy": "best-of-all"})
    assert response.status_code == 422
    assert "strategy" in response.json()["message"]
    response = client.get("/v1/export/dpo", params={"test_size": 1.5})
    assert response.status_code == 422
    assert "test_size" in response.json()["message"]


def test_unknown_row_is_a_404(client: TestClient) -> None:
    response = client.get("/v1/ratings/12345")
    assert response.status_code == 404
    assert "no rating with id 12345" in response.json()["message"]
    assert client.delete("/v1/comparisons/7").status_code == 404


def test_a_path_that_names_no_collection_is_a_404(client: TestClient) -> None:
    for method, path in (("GET", "/v1/answers"), ("GET", "/v1/answers/1"), ("DELETE", "/v1/answers/1")):
        assert client.request(method, path).status_code == 404, (method, path)
