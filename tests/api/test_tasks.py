"""`/v1/tasks`: loading is all or nothing and checked; a task's judgement must be of its conversation and
answers, ranked, once per annotator; progress and agreement."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

TASK = {
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}],
    "answers": ["a", "b"],
}


def load(client: TestClient, *rows: object, annotators: int = 2):
    body = "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)
    return client.post("/v1/tasks/import", params={"annotators": annotators}, content=body.encode())


@pytest.mark.parametrize(
    ("row", "named"),
    [
        ({"messages": [{"role": "banana", "content": "s"}, {"role": "user", "content": "q"}]}, "line 1"),
        ({"messages": [{"role": "user", "content": " "}]}, "line 1"),
        ({"prompt": "p\u0000x"}, "line 1"),
        ({"prompt": "p", "answers": ["a\u0000", "b"]}, "line 1"),
        ({"prompt": "p", "answers": ["only one"]}, "line 1"),
        ("not json", "line 1"),
    ],
)
def test_bad_task_lines_load_nothing(client: TestClient, row: object, named: str) -> None:
    response = load(client, row)
    assert response.status_code == 422 and named in response.json()["message"]
    assert client.get("/v1/tasks/progress").json()["tasks"] == 0


def judgement(**change: object) -> dict:
    return {
        "messages": TASK["messages"],
        "annotator": "ana",
        "task_id": 1,
        "answers": [{"text": "a"}, {"text": "b"}],
        "ranking": [1, 0],
    } | change


def test_a_task_judgement_must_match_the_task(client: TestClient) -> None:
    assert load(client, TASK).status_code == 201
    task = client.get("/v1/tasks/next", params={"annotator": "ana"}).json()["task"]
    assert task["messages"] == TASK["messages"] and [a["text"] for a in task["answers"]] == ["a", "b"]
    for change, named in (
        ({"messages": None, "prompt": "Hi?"}, "conversation"),
        ({"answers": [{"text": "b"}, {"text": "a"}]}, "answers"),
        ({"ranking": None, "answers": [{"text": "a", "rating": "up"}, {"text": "b"}]}, "ranking"),
        ({"task_id": 99}, "no task"),
        ({"task_id": 10**20}, "task_id"),
    ):
        body = {key: value for key, value in judgement(**change).items() if value is not None}
        response = client.post("/v1/annotations", json=body)
        assert response.status_code in (404, 422) and named in response.json()["message"], response.text
    assert client.get("/v1/comparisons").json()["total"] == 0

    assert client.post("/v1/annotations", json=judgement()).status_code == 201
    assert client.post("/v1/annotations", json=judgement()).status_code == 409
    assert client.get("/v1/tasks/next", params={"annotator": "ana"}).json()["task"] is None
    assert client.post("/v1/annotations", json=judgement(annotator="bo", ranking=[0, 1])).status_code == 201
    progress = client.get("/v1/tasks/progress").json()
    assert progress["complete"] == 1 and progress["per_task"][0]["agreement"] == 0.0
    assert client.get("/v1/tasks/next", params={"annotator": "cy"}).json()["task"] is None  # K = 2 reached


def test_a_generation_must_answer_the_conversation_it_is_judged_in(client: TestClient) -> None:
    other = client.post("/v1/generations", json={"prompt": "something else", "response": "x"}).json()["id"]
    body = {"prompt": "Hi?", "annotator": "ana", "answers": [{"generation_id": other, "rating": "up"}]}
    response = client.post("/v1/annotations", json=body)
    assert response.status_code == 422 and "another conversation" in response.json()["message"]


def test_tasks_can_name_logged_answers_and_be_handed_out_by_batch(client: TestClient) -> None:
    ids = [client.post("/v1/generations", json={"prompt": "Hi?", "response": t}).json()["id"] for t in "ab"]
    rows = [{"prompt": "Hi?", "answers": [{"text": t, "generation_id": i} for t, i in zip("ab", ids, strict=True)]}]
    body = "".join(json.dumps(row) + "\n" for row in rows)
    assert client.post("/v1/tasks/import", params={"batch": "round-1"}, content=body.encode()).status_code == 201
    assert load(client, {"prompt": "Other?", "answers": ["c", "d"]}).status_code == 201  # no batch
    task = client.get("/v1/tasks/next", params={"annotator": "ana", "batch": "round-1"}).json()["task"]
    assert [a["generation_id"] for a in task["answers"]] == ids
    answers = [{"generation_id": i} for i in ids]
    judged = {"prompt": "Hi?", "annotator": "ana", "task_id": task["id"], "answers": answers, "ranking": [0, 1]}
    assert client.post("/v1/annotations", json=judged).status_code == 201
    assert client.get("/v1/tasks/next", params={"annotator": "ana", "batch": "round-1"}).json()["task"] is None
    assert client.get("/v1/tasks/next", params={"annotator": "ana"}).json()["task"]["prompt"] == "Other?"
    bad = {"prompt": "Hi?", "answers": [{"text": "a", "generation_id": "x"}, {"text": "b"}]}
    assert load(client, bad).status_code == 422
    for answers, named in (
        ([{"text": "a", "generation_id": 999}, {"text": "b"}], "no generation 999"),
        ([{"text": "not a", "generation_id": ids[0]}, {"text": "b"}], "another answer"),
    ):
        response = load(client, {"prompt": "Hi?", "answers": answers})
        assert response.status_code == 422 and named in response.json()["message"]
    response = load(client, {"prompt": "Other conversation?", "answers": [{"text": "a", "generation_id": ids[0]}, "b"]})
    assert response.status_code == 422 and "another answer or conversation" in response.json()["message"]
