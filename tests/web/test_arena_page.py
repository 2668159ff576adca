"""Arena in a real browser, signed in as annie: two versions answer anonymously, the vote is stored as her
comparison linked to both generations, the versions are revealed, and the leaderboard updates."""

from __future__ import annotations

import httpx

from tests.web.conftest import screenshot
from tests.web.test_dashboard_page import llmfl


def test_a_vote_is_stored_and_updates_the_leaderboard(page, admin_api: httpx.Client, tmp_path, tiny_model) -> None:
    database = tmp_path / "web.db"
    llmfl(database, "models", "add", str(tiny_model), "--name", "tiny-a", "--activate")
    llmfl(database, "models", "add", str(tiny_model), "--name", "tiny-b")

    page.goto("/arena")
    page.wait_for_selector("body[data-loaded=true]")
    assert "No arena votes yet" in page.text_content("#leaderboard")
    page.fill("#prompt", "Which is the capital of Japan?")
    page.click("#battle")
    page.wait_for_selector("#duel:not([hidden])")
    assert page.text_content("#left .reveal") == "" and page.text_content("#right .reveal") == ""
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("ArrowLeft")  # A is better
    page.wait_for_selector("#status.ok")
    left, right = page.text_content("#left .reveal"), page.text_content("#right .reveal")
    assert {left, right} == {"tiny-a", "tiny-b"}
    page.wait_for_selector(f'#leaderboard tr[data-model="{left}"]')
    rows = page.locator("#leaderboard tbody tr").evaluate_all("rows => rows.map(r => r.dataset.model)")
    assert rows == [left, right]  # the winner first
    screenshot(page, "arena")

    (comparison,) = admin_api.get("/v1/comparisons").json()["items"]
    generations = {g["id"]: g for g in admin_api.get("/v1/generations").json()["items"]}
    board = admin_api.get("/v1/arena/leaderboard").json()
    assert comparison["ranking"] == [0, 1] and comparison["annotator"] == "annie"
    linked = [response["generation_id"] for response in comparison["responses"]]
    assert sorted(linked) == sorted(generations)
    assert [generations[g]["model_version"] for g in linked] == [left, right]
    assert board["battles"] == 1 and board["standings"][0]["model_version"] == left
    assert board["standings"][0]["rating"] > board["standings"][1]["rating"]
