"""`POST /v1/annotations`: a ranking, thumbs and edits of one prompt's answers, stored together or not at all."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


def counts(client: TestClient) -> tuple[int, int, int]:
    return tuple(client.get(f"/v1/{kind}").json()["total"] for kind in ("comparisons", "ratings", "corrections"))


def test_an_annotation_stores_its_ranking_thumbs_and_edits(client: TestClient) -> None:
    generation = client.post("/v1/generations", json={"prompt": "2+2?", "response": "5", "model_version": "v1"})
    generation_id = generation.json()["id"]
    body = {
        "prompt": "2+2?",
        "annotator": "ana",
        "comment": "the second is right",
        "answers": [
            {"generation_id": generation_id, "rating": "down", "corrected": "4"},
            {"text": "It is 4.", "rating": "up"},
        ],
        "ranking": [1, 0],
    }
    response = client.post("/v1/annotations", json=body)
    assert response.status_code == 201, response.text
    saved = response.json()
    assert saved["comparison_id"] and len(saved["rating_ids"]) == 2 and len(saved["correction_ids"]) == 1
    comparison = client.get(f"/v1/comparisons/{saved['comparison_id']}").json()
    assert comparison["ranking"] == [1, 0] and comparison["annotator"] == "ana"
    assert comparison["responses"][0]["text"] == "5" and comparison["responses"][0]["generation_id"] == generation_id
    correction = client.get(f"/v1/corrections/{saved['correction_ids'][0]}").json()
    assert correction["original_response"] == "5" and correction["corrected_response"] == "4"
    assert correction["generation_id"] == generation_id and correction["annotator"] == "ana"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"ranking": [0, 0]}, "ranking"),
        ({"annotator": ""}, "annotator"),
        ({"answers": [{"text": "only one"}], "ranking": [0]}, "at least 2"),
        ({"answers": [{"text": "a"}, {"text": "b"}], "ranking": None}, "nothing to store"),
        ({"answers": [{"generation_id": 999, "rating": "up"}, {"text": "b"}]}, "generation"),
    ],
)
def test_a_bad_annotation_stores_nothing(client: TestClient, change: dict, named: str) -> None:
    body = {"prompt": "q", "annotator": "ana", "answers": [{"text": "a"}, {"text": "b"}], "ranking": [1, 0]} | change
    response = client.post("/v1/annotations", json=body)
    assert response.status_code in (404, 422), response.text
    assert named in response.json()["message"]
    assert counts(client) == (0, 0, 0)
