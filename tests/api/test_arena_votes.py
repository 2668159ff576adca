"""The arena takes votes only on battles it issued, from the annotator it issued them to, once (also under
concurrent votes); the leaderboard is served from a cache refreshed after votes; the tiny model answers."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from llm_feedback_loop.models.registry import add_version
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.engine import create_engine, create_session_factory
from tests.support.accounts import bearer


def register(settings: Settings, tiny_model: Path, *names: str) -> None:
    """Versions of the tiny model (the first one active), as `llmfl models add` registers them."""

    async def run() -> None:
        engine = create_engine(settings.database_url)
        try:
            async with create_session_factory(engine)() as session:
                for index, name in enumerate(names):
                    await add_version(session, str(tiny_model), name=name, method="sft", activate=index == 0)
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture
def arena(client: TestClient, settings: Settings, tiny_model: Path) -> TestClient:
    """The service with two versions of the tiny model to battle."""
    register(settings, tiny_model, "tiny-a", "tiny-b")
    return client


def battle(client: TestClient, key: str, prompt: str = "Which is the capital of Japan?", **extra: object) -> dict:
    body = {"prompt": prompt, "max_tokens": 4} | extra
    response = client.post("/v1/arena/battles", json=body, headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.json()


def computed(board: dict) -> datetime:
    return datetime.fromisoformat(board["computed_at"])


def comparisons(client: TestClient) -> list[dict]:
    return client.get("/v1/comparisons").json()["items"]  # the client is an admin: it reads all feedback


def test_an_issued_battle_takes_its_annotators_vote_once(arena: TestClient, api_keys: dict[str, str]) -> None:
    annie = bearer(api_keys["annotator"])
    issued = battle(arena, api_keys["annotator"])
    assert isinstance(issued["battle_id"], int) and len(issued["answers"]) == 2
    left, right = (answer["generation_id"] for answer in issued["answers"])
    # Blind until the vote: the answers are not among the voter's own rows, nor readable through feedback.
    assert arena.get("/v1/generations", headers=annie).json()["total"] == 0
    peek = {"prompt": "Which is the capital of Japan?", "generation_id": left, "rating": "up"}
    assert arena.post("/v1/ratings", json=peek, headers=annie).status_code == 422
    # The arena page's payload: the answers in the order shown, no battle_id.
    voted = arena.post("/v1/arena/votes", json={"generation_ids": [left, right], "winner": "left"}, headers=annie)
    assert voted.status_code == 201, voted.text
    shown = {g["id"]: g["model_version"] for g in arena.get("/v1/generations").json()["items"]}
    assert voted.json()["models"] == [shown[left], shown[right]] and set(voted.json()["models"]) == {"tiny-a", "tiny-b"}
    assert voted.json()["battle_id"] == issued["battle_id"]

    for again in (
        {"generation_ids": [left, right], "winner": "right"},
        {"generation_ids": [right, left], "winner": "left"},
        {"battle_id": issued["battle_id"], "winner": "tie"},
    ):
        response = arena.post("/v1/arena/votes", json=again, headers=annie)
        assert response.status_code == 409 and "voted on already" in response.json()["message"]
    (comparison,) = comparisons(arena)
    assert comparison["annotator"] == "annie" and comparison["ranking"] == [0, 1]
    assert [r["generation_id"] for r in comparison["responses"]] == [left, right]
    assert comparison["metadata"] == {"arena": True, "winner": "left", "battle_id": issued["battle_id"]}
    assert len(arena.get("/v1/export/dpo", params={"dedupe": False}).text.splitlines()) == 1


def test_answers_named_in_reverse_order_keep_the_vote_on_the_answer_meant(
    arena: TestClient, api_keys: dict[str, str]
) -> None:
    issued = battle(arena, api_keys["annotator"])
    left, right = (answer["generation_id"] for answer in issued["answers"])
    body = {"generation_ids": [right, left], "winner": "left"}  # "left" is the battle's right answer here
    voted = arena.post("/v1/arena/votes", json=body, headers=bearer(api_keys["annotator"]))
    assert voted.status_code == 201, voted.text
    (comparison,) = comparisons(arena)
    assert comparison["ranking"] == [1, 0] and comparison["metadata"]["winner"] == "right"
    winner = comparison["responses"][1]["model_version"]
    assert voted.json()["models"][0] == winner


def test_forged_and_foreign_battles_are_refused_and_store_nothing(arena: TestClient, api_keys: dict[str, str]) -> None:
    annie = bearer(api_keys["annotator"])
    forged = [
        arena.post(
            "/v1/generations",
            json={"prompt": "q", "response": f"by {version}", "model_version": version, "metadata": {"arena": True}},
            headers=annie,
        ).json()["id"]
        for version in ("tiny-a", "tiny-b")
    ]
    response = arena.post("/v1/arena/votes", json={"generation_ids": forged, "winner": "left"}, headers=annie)
    assert response.status_code == 404 and "POST /v1/arena/battles" in response.json()["message"]

    issued = battle(arena, api_keys["annotator"])
    pair = [answer["generation_id"] for answer in issued["answers"]]
    as_root = arena.post("/v1/arena/votes", json={"generation_ids": pair, "winner": "left"})  # the admin's key
    assert as_root.status_code == 403 and "not issued to 'root'" in as_root.json()["message"]
    on_behalf = arena.post(
        "/v1/arena/votes", json={"battle_id": issued["battle_id"], "winner": "left", "annotator": "x"}
    )
    assert on_behalf.status_code == 403
    viewer = arena.post(
        "/v1/arena/votes", json={"generation_ids": pair, "winner": "left"}, headers=bearer(api_keys["viewer"])
    )
    assert viewer.status_code == 403
    assert comparisons(arena) == []

    for body, status, named in (
        ({"winner": "left"}, 422, "battle_id or generation_ids"),
        ({"generation_ids": [pair[0], pair[0]], "winner": "left"}, 422, "generation_ids"),
        ({"generation_ids": [pair[0], 0], "winner": "left"}, 422, "generation_ids"),
        ({"battle_id": issued["battle_id"], "generation_ids": forged, "winner": "left"}, 422, "generation_ids"),
        ({"battle_id": issued["battle_id"] + 100, "winner": "left"}, 404, "battle_id"),
        ({"battle_id": issued["battle_id"], "winner": "best"}, 422, "winner"),
    ):
        response = arena.post("/v1/arena/votes", json=body, headers=annie)
        assert response.status_code == status and named in response.json()["message"], response.text
    assert comparisons(arena) == []
    assert arena.get("/v1/arena/leaderboard").json()["battles"] == 0


def test_ten_concurrent_identical_votes_store_one_comparison(arena: TestClient, api_keys: dict[str, str]) -> None:
    issued = battle(arena, api_keys["annotator"])
    body = {"generation_ids": [answer["generation_id"] for answer in issued["answers"]], "winner": "right"}

    def cast(_: int) -> int:
        return arena.post("/v1/arena/votes", json=body, headers=bearer(api_keys["annotator"])).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(pool.map(cast, range(10)))
    assert statuses == [201] + [409] * 9
    assert len(comparisons(arena)) == 1
    assert arena.get("/v1/arena/leaderboard").json()["battles"] == 1


def test_the_leaderboard_is_cached_and_refreshed_after_a_vote(arena: TestClient, api_keys: dict[str, str]) -> None:
    board = arena.app.state.service.arena.leaderboard
    empty = arena.get("/v1/arena/leaderboard").json()
    again = arena.get("/v1/arena/leaderboard", headers=bearer(api_keys["viewer"])).json()
    assert empty["battles"] == 0 and empty["standings"] == [] and board.recomputations == 1
    assert again == empty and again["refreshing"] is False  # the second request was served from the cache

    annie = bearer(api_keys["annotator"])
    for winner in ("left", "left"):
        issued = battle(arena, api_keys["annotator"])
        response = arena.post(
            "/v1/arena/votes", json={"battle_id": issued["battle_id"], "winner": winner}, headers=annie
        )
        assert response.status_code == 201
        winning_model = response.json()["models"][0]
        updated = arena.get("/v1/arena/leaderboard").json()
        assert updated["refreshing"] is False and computed(updated) > computed(empty)
    assert updated["battles"] == 2
    assert {s["model_version"] for s in updated["standings"]} == {"tiny-a", "tiny-b"}
    recomputed = board.recomputations
    for _ in range(3):
        assert arena.get("/v1/arena/leaderboard").json() == updated
    assert board.recomputations == recomputed  # no vote since: no computation
    if updated["standings"][0]["wins"] == 2.0:  # the same version won both (the order is random)
        assert updated["standings"][0]["model_version"] == winning_model


def test_the_arena_keeps_at_most_two_models_loaded(arena: TestClient, settings: Settings, tiny_model: Path) -> None:
    register(settings, tiny_model, "tiny-c")
    models = arena.app.state.service.arena
    for pair in (["tiny-a", "tiny-b"], ["tiny-b", "tiny-c"], ["tiny-a", "tiny-c"], ["tiny-a", "tiny-b"]):
        issued = arena.post("/v1/arena/battles", json={"prompt": "hi", "max_tokens": 2, "models": pair})
        assert issued.status_code == 200, issued.text
        assert len(models.loaded) <= models.capacity == 2
    assert len(models.loaded) == 2


def test_only_an_admin_chooses_the_arenas_versions_and_answers_are_never_greedy(
    arena: TestClient, api_keys: dict[str, str]
) -> None:
    """Each new pair of versions loads models: an annotator battles the default pair. A greedy answer could be
    reproduced through /v1/chat and give the active version's side away."""
    chosen = {"prompt": "hi", "max_tokens": 2, "models": ["tiny-b", "tiny-a"]}
    refused = arena.post("/v1/arena/battles", json=chosen, headers=bearer(api_keys["annotator"]))
    assert refused.status_code == 403 and "only an admin" in refused.json()["message"]
    assert battle(arena, api_keys["annotator"], max_tokens=2)["battle_id"]  # the default pair
    greedy = arena.post("/v1/arena/battles", json={"prompt": "hi", "temperature": 0}, headers=bearer(api_keys["admin"]))
    assert greedy.status_code == 422 and "temperature" in greedy.text


def test_a_battle_needs_two_chat_versions(client: TestClient) -> None:
    response = client.post("/v1/arena/battles", json={"prompt": "hi", "annotator": "x"})
    assert response.status_code == 409 and "two chat model versions" in response.json()["message"]
