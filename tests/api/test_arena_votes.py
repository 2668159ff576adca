"""`POST /v1/arena/votes` checks what it is given; arena votes (ties included) export and rank."""

from __future__ import annotations

from fastapi.testclient import TestClient


def generation(client: TestClient, prompt: str, version: str) -> int:
    body = {"prompt": prompt, "response": f"answer by {version}", "model_version": version, "metadata": {"arena": True}}
    return client.post("/v1/generations", json=body).json()["id"]


def test_votes_are_checked_stored_and_ranked(client: TestClient) -> None:
    a, b = generation(client, "q", "v1"), generation(client, "q", "v2")
    same = generation(client, "q", "v1")
    other_prompt = generation(client, "other", "v2")
    assert (
        client.post(
            "/v1/arena/votes", json={"generation_ids": [a, same], "winner": "left", "annotator": "x"}
        ).status_code
        == 422
    )
    assert (
        client.post(
            "/v1/arena/votes", json={"generation_ids": [a, other_prompt], "winner": "left", "annotator": "x"}
        ).status_code
        == 422
    )
    assert (
        client.post(
            "/v1/arena/votes", json={"generation_ids": [a, 999], "winner": "left", "annotator": "x"}
        ).status_code
        == 404
    )
    assert (
        client.post("/v1/arena/votes", json={"generation_ids": [a, b], "winner": "left", "annotator": ""}).status_code
        == 422
    )
    assert client.get("/v1/comparisons").json()["total"] == 0

    for annotator, winner in (("x", "right"), ("y", "right"), ("z", "tie")):
        response = client.post(
            "/v1/arena/votes", json={"generation_ids": [a, b], "winner": winner, "annotator": annotator}
        )
        assert response.status_code == 201 and response.json()["models"] == ["v1", "v2"]
    again = client.post("/v1/arena/votes", json={"generation_ids": [b, a], "winner": "left", "annotator": "x"})
    assert again.status_code == 409  # one vote per battle and annotator
    plain = client.post("/v1/generations", json={"prompt": "q", "response": "not from a battle", "model_version": "v3"})
    outside = client.post(
        "/v1/arena/votes", json={"generation_ids": [a, plain.json()["id"]], "winner": "left", "annotator": "w"}
    )
    assert outside.status_code == 422
    huge = client.post("/v1/arena/votes", json={"generation_ids": [a, 10**20], "winner": "left", "annotator": "w"})
    assert huge.status_code == 422
    board = client.get("/v1/arena/leaderboard").json()
    assert board["battles"] == 3 and [s["model_version"] for s in board["standings"]] == ["v2", "v1"]
    pairs = client.get("/v1/export/dpo", params={"dedupe": False}).text.splitlines()
    assert len(pairs) == 2  # the two wins; the tie makes no pair


def test_a_battle_needs_two_chat_versions(client: TestClient) -> None:
    response = client.post("/v1/arena/battles", json={"prompt": "hi", "annotator": "x"})
    assert response.status_code == 409 and "two chat model versions" in response.json()["message"]
