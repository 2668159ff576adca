"""The `/v1` feedback API: create, get, list (pagination, filters), delete, and links to generations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient


def log_generation(client: TestClient, text: str, model: str = "tiny", version: str = "tiny@1") -> int:
    response = client.post(
        "/v1/generations",
        json={"prompt": "Apa itu Kubernetes?", "response": text, "model": model, "model_version": version},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_create_and_get_each_kind(client: TestClient) -> None:
    rating = client.post(
        "/v1/ratings",
        json={"prompt": "p", "response": "r", "rating": "down", "annotator": "ani", "metadata": {"source": "t"}},
    )
    assert rating.status_code == 201
    body = rating.json()
    assert body["kind"] == "rating" and body["annotator"] == "ani" and body["metadata"] == {"source": "t"}
    assert client.get(f"/v1/ratings/{body['id']}").json() == body

    comparison = client.post(
        "/v1/comparisons", json={"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}], "ranking": [1, 0]}
    ).json()
    assert comparison["best_index"] == 1
    assert [r["id"] for r in comparison["responses"]] == ["0", "1"]

    correction = client.post(
        "/v1/corrections", json={"prompt": "p", "original_response": "2+2=5", "corrected_response": "2+2=4"}
    ).json()
    assert client.get(f"/v1/corrections/{correction['id']}").json()["corrected_response"] == "2+2=4"


def test_conversation_prompt_keeps_its_messages(client: TestClient) -> None:
    messages = [
        {"role": "system", "content": "Jawab singkat."},
        {"role": "user", "content": "Apa itu k8s?"},
        {"role": "assistant", "content": "Kubernetes."},
        {"role": "user", "content": "Siapa yang membuatnya?"},
    ]
    body = client.post("/v1/ratings", json={"messages": messages, "response": "Google.", "rating": "up"}).json()
    assert body["prompt"] == "Siapa yang membuatnya?"
    assert body["messages"] == messages


def test_feedback_links_to_generations_and_their_model_version(client: TestClient) -> None:
    first = log_generation(client, "Sistem orkestrasi kontainer.")
    second = log_generation(client, "Tidak tahu.", version="tiny@2")
    rating = client.post("/v1/ratings", json={"prompt": "Apa itu Kubernetes?", "rating": "up", "generation_id": first})
    assert rating.status_code == 201
    assert rating.json()["response"] == "Sistem orkestrasi kontainer."
    assert rating.json()["model"] == "tiny"
    assert rating.json()["generation_id"] == first

    comparison = client.post(
        "/v1/comparisons",
        json={
            "prompt": "Apa itu Kubernetes?",
            "responses": [{"generation_id": first}, {"generation_id": second}],
            "best_index": 0,
        },
    ).json()
    assert [(r["text"], r["model_version"]) for r in comparison["responses"]] == [
        ("Sistem orkestrasi kontainer.", "tiny@1"),
        ("Tidak tahu.", "tiny@2"),
    ]
    correction = client.post(
        "/v1/corrections",
        json={"prompt": "Apa itu Kubernetes?", "generation_id": second, "corrected_response": "Orkestrator kontainer."},
    ).json()
    assert correction["original_response"] == "Tidak tahu."

    mismatch = client.post(
        "/v1/ratings", json={"prompt": "Apa itu Kubernetes?", "rating": "up", "generation_id": first, "response": "x"}
    )
    assert mismatch.status_code == 422
    assert "differs from the text of generation" in mismatch.json()["message"]


def test_list_paginates_newest_first(client: TestClient) -> None:
    ids = [
        client.post("/v1/ratings", json={"prompt": f"p{i}", "response": "r", "rating": "up"}).json()["id"]
        for i in range(5)
    ]
    page = client.get("/v1/ratings", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [item["id"] for item in page["items"]] == [ids[3], ids[2]]
    assert client.get("/v1/ratings", params={"limit": 0}).status_code == 422
    assert client.get("/v1/ratings", params={"limit": 5000}).status_code == 422


def test_list_filters_by_annotator_model_and_time(client: TestClient) -> None:
    client.post("/v1/ratings", json={"prompt": "p", "response": "r", "rating": "up", "annotator": "ana", "model": "m1"})
    client.post(
        "/v1/ratings", json={"prompt": "p", "response": "s", "rating": "up", "annotator": "budi", "model": "m2"}
    )
    assert client.get("/v1/ratings", params={"annotator": "ana"}).json()["total"] == 1
    assert client.get("/v1/ratings", params={"model": "m2"}).json()["items"][0]["annotator"] == "budi"
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert client.get("/v1/ratings", params={"since": future}).json()["total"] == 0
    assert client.get("/v1/ratings", params={"since": past, "until": future}).json()["total"] == 2
    assert client.get("/v1/ratings", params={"since": future, "until": past}).status_code == 422


def test_feedback_list_spans_kinds_and_filters_by_kind(client: TestClient) -> None:
    client.post("/v1/ratings", json={"prompt": "p", "response": "r", "rating": "up"})
    client.post("/v1/comparisons", json={"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}], "best_index": 0})
    client.post("/v1/corrections", json={"prompt": "p", "original_response": "a", "corrected_response": "b"})
    everything = client.get("/v1/feedback").json()
    assert everything["total"] == 3
    assert [item["kind"] for item in everything["items"]] == ["correction", "comparison", "rating"]
    only = client.get("/v1/feedback", params=[("kind", "rating"), ("kind", "correction")]).json()
    assert sorted(item["kind"] for item in only["items"]) == ["correction", "rating"]
    assert [item["kind"] for item in client.get("/v1/feedback", params={"limit": 1, "offset": 1}).json()["items"]] == [
        "comparison"
    ]


def test_delete_removes_the_row(client: TestClient) -> None:
    row_id = client.post("/v1/ratings", json={"prompt": "p", "response": "r", "rating": "up"}).json()["id"]
    assert client.delete(f"/v1/ratings/{row_id}").status_code == 204
    assert client.get(f"/v1/ratings/{row_id}").status_code == 404


def test_deleting_a_generation_keeps_the_feedback_on_it(client: TestClient) -> None:
    generation = log_generation(client, "answer")
    rating = client.post(
        "/v1/ratings", json={"prompt": "Apa itu Kubernetes?", "rating": "up", "generation_id": generation}
    )
    assert client.delete(f"/v1/generations/{generation}").status_code == 204
    kept = client.get(f"/v1/ratings/{rating.json()['id']}").json()
    assert kept["response"] == "answer" and kept["generation_id"] is None


def test_health_answers_and_openapi_docs_are_served(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/feedback", "/rlhf-feedback", "/v1/ratings", "/v1/export/{kind}"} <= set(paths)
