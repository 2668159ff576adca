"""Input a fuzzer found 500s with: refused with a 4xx naming the field, nothing stored, lists still readable;
and the costs a request can cause are bounded (answers per comparison, pairs per prompt, paging)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from llm_feedback_loop.api.guards.strict_json import StrictJSONBody
from llm_feedback_loop.feedback import validation

RATING = {"prompt": "p", "response": "r", "rating": "up"}
BIG = 2**63


def stored_rows(client: TestClient) -> int:
    return client.get("/v1/feedback").json()["total"] + client.get("/v1/generations").json()["total"]


def post_raw(client: TestClient, path: str, text: str) -> Any:
    return client.post(path, content=text.encode("utf-8"), headers={"content-type": "application/json"})


def lists_are_readable(client: TestClient) -> None:
    for path in ("/v1/feedback", "/v1/ratings", "/v1/generations", "/v1/tasks/progress", "/rlhf-feedback"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
    legacy = client.get("/feedback")
    assert legacy.status_code == 200 and isinstance(json.loads(legacy.text), list)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/v1/ratings", '{"prompt": "p", "response": "r", "rating": "up", "metadata": {"score": NaN}}'),
        ("/v1/ratings", '{"prompt": "p", "response": "r", "rating": "up", "metadata": {"score": -Infinity}}'),
        ("/v1/generations", '{"prompt": "p", "response": "r", "parameters": {"temperature": Infinity}}'),
        ("/feedback", '{"prompt": "p", "response": "r", "rating": "up", "metadata": {"x": [1, NaN]}}'),
        ("/v1/ratings", '{"prompt": "p", "response": "r", "rating": "up", "metadata": {"x": 1e400}}'),
    ],
)
def test_non_finite_numbers_are_refused_and_lists_stay_readable(client: TestClient, path: str, text: str) -> None:
    response = post_raw(client, path, text)
    assert response.status_code in (400, 422), response.text
    assert "finite" in response.json()["message"] or "too large" in response.json()["message"]
    assert stored_rows(client) == 0
    lists_are_readable(client)


def test_deep_nesting_is_refused_naming_the_field(client: TestClient) -> None:
    for depth in (900, 100):
        response = client.post("/v1/ratings", json=RATING | {"metadata": nested(depth)})
        assert response.status_code == 422 and "nested deeper than" in response.json()["message"], response.text
    response = client.post("/v1/generations", json={"prompt": "p", "response": "r", "parameters": nested(33)})
    assert response.status_code == 422, response.text
    assert "parameters" in response.json()["message"] and "32 levels" in response.json()["message"]
    assert stored_rows(client) == 0
    assert client.post("/v1/ratings", json=RATING | {"metadata": nested(20)}).status_code == 201
    lists_are_readable(client)
    assert client.get("/v1/ratings").json()["items"][0]["metadata"] == nested(20)


def test_huge_integers_in_bodies_paths_and_queries_are_4xx(client: TestClient) -> None:
    for text in (
        f'{{"prompt": "p", "rating": "up", "generation_id": {BIG}}}',
        f'{{"prompt": "p", "response": "r", "rating": "up", "metadata": {{"n": {2**64}}}}}',
        f'{{"prompt": "p", "response": "r", "rating": "up", "metadata": {{"n": {-(2**63) - 1}}}}}',
        '{"prompt": "p", "response": "r", "rating": "up", "metadata": {"n": ' + "7" * 5000 + "}}",
    ):
        response = post_raw(client, "/v1/ratings", text)
        assert response.status_code == 422, response.text
        assert "2**63" in response.json()["message"]
    response = post_raw(client, "/v1/ratings", f'{{"prompt": "p", "rating": "up", "generation_id": {2**70}}}')
    assert response.status_code == 422 and "generation_id" in response.json()["message"]
    assert stored_rows(client) == 0

    assert client.get(f"/v1/ratings/{BIG}").status_code == 422
    assert client.get(f"/v1/ratings/{'9' * 5000}").status_code == 422
    assert client.delete(f"/v1/comparisons/{BIG}").status_code == 422
    for path in ("/v1/ratings", "/v1/feedback"):
        for offset in (BIG, 10_001):
            response = client.get(path, params={"offset": offset})
            assert response.status_code == 422 and "offset" in response.json()["message"], response.text
        assert client.get(path, params={"offset": 10_000}).status_code == 200
    assert client.get("/v1/tasks/progress", params={"after_id": BIG}).status_code == 422
    assert client.get("/v1/export/dpo", params={"seed": BIG}).status_code == 422
    lists_are_readable(client)


@pytest.mark.parametrize(
    ("field", "value"),
    [("since", "0001-01-01T00:00:00+05:00"), ("until", "9999-12-31T23:59:59-05:00")],
)
@pytest.mark.parametrize("path", ["/v1/ratings", "/v1/feedback", "/v1/export/dpo", "/v1/export/sft/manifest"])
def test_dates_that_overflow_in_utc_are_422_naming_the_field(
    client: TestClient, path: str, field: str, value: str
) -> None:
    response = client.get(path, params={field: value})
    assert response.status_code == 422, response.text
    assert response.json()["message"].startswith(f"{field}:")


def test_dates_at_the_edge_without_overflow_are_fine(client: TestClient) -> None:
    assert client.post("/v1/ratings", json=RATING).status_code == 201
    page = client.get("/v1/ratings", params={"since": "0001-01-01T00:00:00-05:00", "until": "9999-12-31T23:00:00Z"})
    assert page.status_code == 200 and page.json()["total"] == 1


@pytest.mark.parametrize(
    "text",
    [
        '{"prompt": "\\ud800", "response": "r", "rating": "up"}',
        '{"prompt": "p", "response": "r", "rating": "up", "metadata": {"k": "\\udfff x"}}',
        '{"prompt": "p", "response": "r", "rating": "up", "metadata": {"\\ud83d": 1}}',
    ],
)
def test_lone_surrogates_are_refused(client: TestClient, text: str) -> None:
    response = post_raw(client, "/v1/ratings", text)
    assert response.status_code == 400 and "surrogate" in response.json()["message"], response.text
    assert stored_rows(client) == 0
    assert client.post("/v1/ratings", json=RATING | {"metadata": {"k": "😀"}}).status_code == 201  # a pair is fine


def test_nul_in_metadata_is_refused(client: TestClient) -> None:
    response = client.post("/v1/ratings", json=RATING | {"metadata": {"note": "a\u0000b"}})
    assert (
        response.status_code == 422 and "metadata: at note: must not contain the NUL" in response.json()["message"]
    ), response.text
    response = client.post("/v1/ratings", json=RATING | {"metadata": {"a\u0000": 1}})
    assert response.status_code == 422 and "metadata" in response.json()["message"]
    assert stored_rows(client) == 0


def test_a_comparison_holds_at_most_16_answers(client: TestClient) -> None:
    def answers(count: int) -> list[dict[str, str]]:
        return [{"text": f"answer {i}"} for i in range(count)]

    for path, body in (
        ("/v1/comparisons", {"prompt": "p", "responses": answers(17), "ranking": list(range(17))}),
        ("/rlhf-feedback", {"prompt": "p", "responses": answers(17), "bestIndex": 0}),
        ("/v1/annotations", {"prompt": "p", "annotator": "root", "answers": answers(17), "ranking": list(range(17))}),
    ):
        response = client.post(path, json=body)
        assert response.status_code == 422, response.text
        assert "at most 16 answers" in response.json()["message"]
    assert stored_rows(client) == 0
    response = client.post("/v1/comparisons", json={"prompt": "p", "responses": answers(16), "best_index": 3})
    assert response.status_code == 201


def test_twenty_thousand_responses_are_checked_in_linear_time(client: TestClient) -> None:
    ids = [str(i) for i in range(20_000)]
    validation.check_comparison(ids, None, None)  # quadratic, this took minutes
    with pytest.raises(ValueError, match="duplicate ids: 7"):
        validation.check_comparison([*ids, "7"], None, None)
    body = {"prompt": "p", "responses": [{"id": i, "text": "t"} for i in ids], "best_index": 0}
    response = client.post("/v1/comparisons", json=body)
    assert response.status_code == 422 and "at most 256" in response.json()["message"]
    assert stored_rows(client) == 0


def test_an_all_pairs_export_is_capped_per_prompt_and_says_so(client: TestClient) -> None:
    responses = [{"text": f"answer {i}"} for i in range(16)]
    body = {"prompt": "p", "responses": responses, "ranking": list(range(16))}
    assert client.post("/v1/comparisons", json=body).status_code == 201  # 120 pairs
    rows = [json.loads(line) for line in client.get("/v1/export/dpo").text.splitlines()]
    assert len(rows) == 64
    assert all(row["chosen"] == "answer 0" for row in rows[:15])  # the best answer's pairs come first
    manifest = client.get("/v1/export/dpo/manifest").json()
    assert manifest["counts"]["rows"] == 64 and manifest["counts"]["prompts_capped"] == 1
    assert manifest["options"]["max_pairs_per_prompt"] == 64 and "max_pairs_per_prompt=64" in manifest["capped"]
    legacy = client.get("/rlhf-feedback/export").text.splitlines()
    assert len(legacy) == 120  # the original's export: every pair of what the API accepts


def test_feedback_pages_merge_kinds_newest_first(client: TestClient) -> None:
    for index in range(5):
        assert client.post("/v1/ratings", json=RATING | {"response": f"r{index}"}).status_code == 201
        correction = {"prompt": "p", "original_response": "a", "corrected_response": f"c{index}"}
        assert client.post("/v1/corrections", json=correction).status_code == 201
    everything = client.get("/v1/feedback", params={"limit": 10}).json()["items"]
    assert [item["kind"] for item in everything] == ["correction", "rating"] * 5
    pages = [client.get("/v1/feedback", params={"limit": 3, "offset": offset}).json() for offset in (0, 3, 6, 9)]
    assert [item for page in pages for item in page["items"]] == everything
    assert all(page["total"] == 10 for page in pages)


def judgement(annotator: str) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": "Hi?"}],
        "annotator": annotator,
        "task_id": 1,
        "answers": [{"text": "a"}, {"text": "b"}],
        "ranking": [1, 0],
    }


def load_task(client: TestClient, annotators: int) -> None:
    body = json.dumps({"prompt": "Hi?", "answers": ["a", "b"]}) + "\n"
    response = client.post("/v1/tasks/import", params={"annotators": annotators}, content=body.encode())
    assert response.status_code == 201, response.text


def test_concurrent_judgements_of_one_task_store_one(client: TestClient) -> None:
    load_task(client, annotators=2)
    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: client.post("/v1/annotations", json=judgement("root")), range(10)))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9, [r.text for r in responses]
    assert all("has judged task 1" in r.json()["message"] for r in responses if r.status_code == 409)
    assert client.get("/v1/comparisons").json()["total"] == 1
    progress = client.get("/v1/tasks/progress").json()
    assert progress["per_task"][0]["done"] == 1 and progress["annotations_done"] == 1


def test_a_task_judged_by_enough_annotators_is_409(client: TestClient) -> None:
    load_task(client, annotators=2)
    assert client.post("/v1/annotations", json=judgement("ana")).status_code == 201
    assert client.post("/v1/annotations", json=judgement("bo")).status_code == 201
    response = client.post("/v1/annotations", json=judgement("cy"))
    assert response.status_code == 409 and "2 judgement(s) already" in response.json()["message"]
    assert client.get("/v1/comparisons").json()["total"] == 2


def test_progress_counts_in_sql_and_pages_the_tasks(client: TestClient) -> None:
    body = "".join(json.dumps({"prompt": f"q{i}", "answers": ["a", "b"]}) + "\n" for i in range(5))
    assert client.post("/v1/tasks/import", params={"annotators": 1}, content=body.encode()).status_code == 201
    first = client.get("/v1/tasks/progress", params={"limit": 2}).json()
    assert first["tasks"] == 5 and first["annotations_needed"] == 5 and first["complete"] == 0
    assert [task["id"] for task in first["per_task"]] == [1, 2] and first["next_after_id"] == 2
    last = client.get("/v1/tasks/progress", params={"limit": 2, "after_id": 4}).json()
    assert [task["id"] for task in last["per_task"]] == [5] and last["next_after_id"] is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("[" * 5000 + "]" * 5000, "nested deeper than"),
        ('{"prompt": "p", "metadata": ' + json.dumps(nested(40)) + "}", "nested deeper than"),
        ('{"prompt": "p", "metadata": {"x": NaN}}', "NaN"),
        ('{"prompt": "p", "metadata": {"x": ' + "1" * 5000 + "}}", "too large"),
        ('{"prompt": "\\ud800"}', "surrogate"),
        ('{"prompt": "p", "answers": [{"text": "a", "generation_id": 99999999999999999999}, "b"]}', "2**63"),
    ],
)
def test_bad_task_files_are_422_with_the_line(client: TestClient, line: str, expected: str) -> None:
    body = json.dumps({"prompt": "fine"}) + "\n" + line + "\n"
    response = client.post("/v1/tasks/import", content=body.encode(), headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 422, response.text
    assert "line 2" in response.json()["message"] and expected in response.json()["message"]
    assert client.get("/v1/tasks/progress").json()["tasks"] == 0


def test_the_guard_stands_alone_for_another_app() -> None:
    """What the inference server gets from `app.add_middleware(StrictJSONBody)`."""
    app = FastAPI()
    app.add_middleware(StrictJSONBody)

    @app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    with TestClient(app) as plain:
        assert plain.post("/echo", json={"a": [1, 2.5, "x"]}).json() == {"a": [1, 2.5, "x"]}
        assert post_raw(plain, "/echo", '{"a": NaN}').status_code == 400
        assert post_raw(plain, "/echo", '{"a": ' + "[" * 70 + "]" * 70 + "}").status_code == 422
        assert post_raw(plain, "/echo", '{"a": 1e20}').json() == {"a": 1e20}  # a float, not a big integer
        form = plain.post("/echo", content=b"a=NaN", headers={"content-type": "application/x-www-form-urlencoded"})
        assert form.status_code == 422  # not JSON: passed to the app, which refuses it itself
