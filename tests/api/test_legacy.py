"""The original project's endpoints: payloads post as they did, and the exports give its exact lines."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.support.payloads import BEST_PICK_COMPARISON, README_COMPARISON, README_RATING, UNICODE_TEXTS


def test_post_rating_returns_message_and_id(client: TestClient) -> None:
    response = client.post("/feedback", json=README_RATING)
    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "Feedback saved"
    assert isinstance(body["id"], int)


def test_list_ratings_newest_first_with_original_fields(client: TestClient) -> None:
    first = client.post("/feedback", json=README_RATING).json()["id"]
    second = client.post("/feedback", json=README_RATING | {"rating": "down", "response": "Tidak tahu."}).json()["id"]
    listed = client.get("/feedback").json()
    assert [row["id"] for row in listed] == [second, first]
    assert set(listed[0]) == {"id", "prompt", "response", "rating", "model", "createdAt", "updatedAt"}
    assert listed[1]["model"] == README_RATING["model"]


def test_feedback_export_gives_upvoted_ratings_as_the_original_lines(client: TestClient) -> None:
    client.post("/feedback", json=README_RATING)
    client.post("/feedback", json={"prompt": "Apa itu Docker?", "response": "Tidak tahu.", "rating": "down"})
    client.post("/feedback", json={"prompt": "Halo 👋", "response": "Halo juga! 😊", "rating": "up"})
    response = client.get("/feedback/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.text == (
        '{"prompt":"Apa itu Kubernetes?","completion":"Kubernetes adalah sistem orkestrasi kontainer."}\n'
        '{"prompt":"Halo 👋","completion":"Halo juga! 😊"}\n'
    )


def test_rlhf_export_of_the_readme_sample_is_the_original_line(client: TestClient) -> None:
    created = client.post("/rlhf-feedback", json=README_COMPARISON)
    assert created.status_code == 201
    assert created.json()["message"] == "RLHF feedback saved"
    response = client.get("/rlhf-feedback/export")
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.text == (
        '{"prompt":"Apa itu Kubernetes?",'
        '"chosen":"Kubernetes digunakan untuk mengelola container dan deployment.",'
        '"rejected":"Kubernetes adalah sistem orkestrasi kontainer."}\n'
    )


def test_rlhf_export_gives_every_ordered_pair_of_a_ranking(client: TestClient) -> None:
    payload = {
        "prompt": "p",
        "responses": [{"id": str(i), "text": t} for i, t in enumerate(["A", "B", "C"])],
        "ranking": [2, 0, 1],
    }
    client.post("/rlhf-feedback", json=payload)
    lines = [json.loads(line) for line in client.get("/rlhf-feedback/export").text.splitlines()]
    assert [(line["chosen"], line["rejected"]) for line in lines] == [("C", "A"), ("C", "B"), ("A", "B")]


def test_rlhf_export_with_only_a_best_pick_gives_best_vs_each_other(client: TestClient) -> None:
    client.post("/rlhf-feedback", json=BEST_PICK_COMPARISON)
    lines = [json.loads(line) for line in client.get("/rlhf-feedback/export").text.splitlines()]
    best = BEST_PICK_COMPARISON["responses"][1]["text"]
    assert [(line["chosen"], line["rejected"]) for line in lines] == [
        (best, "Docker menjalankan kontainer."),
        (best, "Tidak tahu."),
    ]


def test_comparison_without_ranking_or_best_pick_is_stored_but_exports_nothing(client: TestClient) -> None:
    payload = {key: value for key, value in README_COMPARISON.items() if key != "ranking"}
    assert client.post("/rlhf-feedback", json=payload).status_code == 201
    assert client.get("/rlhf-feedback/export").text == ""
    assert len(client.get("/rlhf-feedback").json()) == 1


def test_list_comparisons_returns_the_payload_fields(client: TestClient) -> None:
    client.post("/rlhf-feedback", json=README_COMPARISON)
    (row,) = client.get("/rlhf-feedback").json()
    assert row["prompt"] == README_COMPARISON["prompt"]
    assert row["responses"] == README_COMPARISON["responses"]
    assert row["ranking"] == [1, 0]
    assert row["comment"] == README_COMPARISON["comment"]
    assert {"id", "createdAt", "updatedAt", "bestIndex"} <= set(row)


def test_unicode_round_trips_unchanged(client: TestClient) -> None:
    for text in UNICODE_TEXTS:
        client.post("/feedback", json={"prompt": text, "response": text[::-1], "rating": "up"})
        client.post(
            "/rlhf-feedback", json={"prompt": text, "responses": [{"text": text}, {"text": "x"}], "bestIndex": 0}
        )
    ratings = client.get("/feedback").json()
    assert [row["prompt"] for row in reversed(ratings)] == UNICODE_TEXTS
    assert [row["response"] for row in reversed(ratings)] == [t[::-1] for t in UNICODE_TEXTS]
    exported = [json.loads(line) for line in client.get("/feedback/export").text.splitlines()]
    assert [row["prompt"] for row in exported] == UNICODE_TEXTS
    comparisons = client.get("/rlhf-feedback").json()
    assert [row["responses"][0]["text"] for row in reversed(comparisons)] == UNICODE_TEXTS
