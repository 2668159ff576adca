"""The annotate page in a real browser: generate 3 answers with the tiny model, rank them, edit one,
rate one, comment, submit; the rows land in the database with the ranking, the correction and the links
to the logged generations. Pasted answers with HTML in them are shown as text; shortcuts work."""

from __future__ import annotations

import httpx

from tests.web.conftest import screenshot

XSS_SCRIPT = "<script>window.__xss = 1</script>Answer with a script tag"
XSS_IMG = '<img src="x" onerror="window.__xss = 2"> answer with an image'


def card_order(page) -> list[int]:
    return [
        int(index) for index in page.locator("#answers .answer").evaluate_all("els => els.map(e => e.dataset.index)")
    ]


def test_rank_edit_rate_and_submit_generated_answers(page, live_service: str) -> None:
    page.goto("/")
    page.fill("#annotator", "ana")
    page.fill("#prompt", "What is the capital of France?")
    page.select_option("#count", "3")
    page.click("#generate")
    page.wait_for_selector("body[data-generating=false]")  # streamed in; the answers are logged
    assert card_order(page) == [0, 1, 2]
    assert page.locator("#answers .answer .model").all_text_contents() == ["tiny"] * 3

    page.locator('.answer[data-index="2"] .up').click()  # answer 3 above answer 2
    page.locator('.answer[data-index="2"] .up').click()  # and above answer 1: best
    assert card_order(page) == [2, 0, 1]
    page.locator('.answer[data-index="1"] .edit-toggle').click()
    page.fill('.answer[data-index="1"] .edit', "The capital of France is Paris.")
    page.locator('.answer[data-index="2"] .thumb[data-rating="up"]').click()
    page.fill("#comment", "The third answer is best.")
    screenshot(page, "annotate-ranked")
    page.click("#submit")
    page.wait_for_selector("#status.ok")
    assert "ranking #1" in page.text_content("#status")

    with httpx.Client(base_url=live_service) as api:
        generations = {g["id"]: g for g in api.get("/v1/generations").json()["items"]}
        (comparison,) = api.get("/v1/comparisons").json()["items"]
        (correction,) = api.get("/v1/corrections").json()["items"]
        (rating,) = api.get("/v1/ratings").json()["items"]
    assert comparison["ranking"] == [2, 0, 1] and comparison["annotator"] == "ana"
    assert comparison["comment"] == "The third answer is best."
    linked = [response["generation_id"] for response in comparison["responses"]]
    assert sorted(linked) == sorted(generations) and len(linked) == 3
    assert [r["text"] for r in comparison["responses"]] == [generations[g]["response"] for g in linked]
    assert correction["corrected_response"] == "The capital of France is Paris."
    assert (
        correction["generation_id"] == linked[1]
        and correction["original_response"] == generations[linked[1]]["response"]
    )
    assert rating["rating"] == "up" and rating["generation_id"] == linked[2] and rating["annotator"] == "ana"


def test_pasted_html_is_shown_as_text_and_shortcuts_rank_and_submit(page, live_service: str) -> None:
    page.goto("/")
    page.fill("#annotator", "bo")
    page.fill("#prompt", "Say something with **markdown**")
    page.check("#paste-mode")
    boxes = page.locator(".paste-answer")
    boxes.nth(0).fill("A *plain* answer with `code`")
    boxes.nth(1).fill(XSS_SCRIPT)
    boxes.nth(2).fill(XSS_IMG)
    page.click("#use-pasted")
    page.wait_for_selector("#answers .answer >> nth=2")

    texts = page.locator("#answers .answer .text")
    assert XSS_SCRIPT in texts.nth(1).text_content()
    assert XSS_IMG in texts.nth(2).text_content()
    assert page.locator("#answers .text script, #answers .text img").count() == 0
    assert page.evaluate("window.__xss") is None
    assert page.locator("#answers .answer").first.locator(".text em").text_content() == "plain"  # markdown, safely
    screenshot(page, "annotate-pasted")

    page.locator("body").click(position={"x": 5, "y": 5})  # focus outside the text fields
    page.keyboard.press("3")
    assert card_order(page) == [2, 0, 1]
    page.keyboard.press("2")
    assert card_order(page) == [1, 2, 0]
    page.keyboard.press("Enter")
    page.wait_for_selector("#status.ok")

    with httpx.Client(base_url=live_service) as api:
        (comparison,) = api.get("/v1/comparisons").json()["items"]
    assert comparison["ranking"] == [1, 2, 0] and comparison["annotator"] == "bo"
    assert [r["text"] for r in comparison["responses"]] == [
        "A *plain* answer with `code`",
        XSS_SCRIPT,
        XSS_IMG,
    ]
    assert all(r["generation_id"] is None for r in comparison["responses"])


def test_submitting_without_a_name_asks_for_one(page) -> None:
    page.goto("/")
    page.evaluate("localStorage.clear()")
    page.fill("#prompt", "Hello?")
    page.check("#paste-mode")
    page.locator(".paste-answer").nth(0).fill("Hi.")
    page.locator(".paste-answer").nth(1).fill("Hello there!")
    page.click("#use-pasted")
    page.click("#submit")
    page.wait_for_selector("#status.error")
    assert "name" in page.text_content("#status")


def test_continue_a_conversation_with_the_best_answer(page, live_service: str) -> None:
    page.goto("/")
    page.fill("#annotator", "cy")
    page.fill("#prompt", "Recommend a book.")
    page.check("#paste-mode")
    page.locator(".paste-answer").nth(0).fill("Dune.")
    page.locator(".paste-answer").nth(1).fill("Try *The Hobbit*: short and warm.")
    page.locator(".paste-answer").nth(2).fill("No.")
    page.click("#use-pasted")
    page.locator('.answer[data-index="1"] .up').click()  # the second answer is best
    page.click("#submit")
    page.wait_for_selector("#status.ok")
    page.click("#continue")
    assert page.locator("#history .turn").count() == 2
    assert "The Hobbit" in page.text_content("#history .turn.assistant")
    page.fill("#prompt", "Why that one?")
    page.locator(".paste-answer").nth(0).fill("It is gentle.")
    page.locator(".paste-answer").nth(1).fill("Because.")
    page.locator(".paste-answer").nth(2).fill("Dragons.")
    page.click("#use-pasted")
    page.click("#submit")
    page.wait_for_selector("#status.ok >> text=ranking #2")
    screenshot(page, "annotate-conversation")

    with httpx.Client(base_url=live_service) as api:
        second = api.get("/v1/comparisons/2").json()
    assert second["messages"] == [
        {"role": "user", "content": "Recommend a book."},
        {"role": "assistant", "content": "Try *The Hobbit*: short and warm."},
        {"role": "user", "content": "Why that one?"},
    ]
