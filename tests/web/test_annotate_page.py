"""The annotate page in a real browser, signed in as annie (an annotator): generate 3 answers with the tiny
model, rank them, edit one, rate one, comment, submit; the rows land in the database as annie's, with the
ranking, the correction and the links to the logged generations. Pasted answers with HTML in them are shown
as text; shortcuts work. With authentication off, the page asks for a name instead."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import running_llmfl
from tests.web.conftest import CSP, REPORT_VIOLATIONS, CspWatch, screenshot

XSS_SCRIPT = "<script>window.__xss = 1</script>Answer with a script tag"
XSS_IMG = '<img src="x" onerror="window.__xss = 2"> answer with an image'


def card_order(page) -> list[int]:
    return [
        int(index) for index in page.locator("#answers .answer").evaluate_all("els => els.map(e => e.dataset.index)")
    ]


def test_rank_edit_rate_and_submit_generated_answers(page, admin_api: httpx.Client) -> None:
    page.goto("/")
    assert page.locator("#annotator").count() == 0  # the signed-in user is the annotator
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

    generations = {g["id"]: g for g in admin_api.get("/v1/generations").json()["items"]}
    (comparison,) = admin_api.get("/v1/comparisons").json()["items"]
    (correction,) = admin_api.get("/v1/corrections").json()["items"]
    (rating,) = admin_api.get("/v1/ratings").json()["items"]
    assert comparison["ranking"] == [2, 0, 1] and comparison["annotator"] == "annie"
    assert all(g["annotator"] == "annie" for g in generations.values())
    assert comparison["comment"] == "The third answer is best."
    linked = [response["generation_id"] for response in comparison["responses"]]
    assert sorted(linked) == sorted(generations) and len(linked) == 3
    assert [r["text"] for r in comparison["responses"]] == [generations[g]["response"] for g in linked]
    assert correction["corrected_response"] == "The capital of France is Paris."
    assert (
        correction["generation_id"] == linked[1]
        and correction["original_response"] == generations[linked[1]]["response"]
    )
    assert rating["rating"] == "up" and rating["generation_id"] == linked[2] and rating["annotator"] == "annie"


def test_pasted_html_is_shown_as_text_and_shortcuts_rank_and_submit(page, admin_api: httpx.Client) -> None:
    page.goto("/")
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

    (comparison,) = admin_api.get("/v1/comparisons").json()["items"]
    assert comparison["ranking"] == [1, 2, 0] and comparison["annotator"] == "annie"
    assert [r["text"] for r in comparison["responses"]] == [
        "A *plain* answer with `code`",
        XSS_SCRIPT,
        XSS_IMG,
    ]
    assert all(r["generation_id"] is None for r in comparison["responses"])


def test_continue_a_conversation_with_the_best_answer(page, admin_api: httpx.Client) -> None:
    page.goto("/")
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

    second = admin_api.get("/v1/comparisons/2").json()
    assert second["messages"] == [
        {"role": "user", "content": "Recommend a book."},
        {"role": "assistant", "content": "Try *The Hobbit*: short and warm."},
        {"role": "user", "content": "Why that one?"},
    ]


@pytest.fixture
def open_service(tmp_path: Path, tiny_model: Path) -> Iterator[str]:
    """`llmfl serve` with AUTH_REQUIRED=false: one user on their own machine, no sign-in."""
    environment = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/open.db",
        "BASE_MODEL": str(tiny_model),
        "AUTH_REQUIRED": "false",
    }
    with running_llmfl(["serve"], tmp_path, environment) as base:
        yield base


def test_with_authentication_off_the_page_asks_for_a_name(browser, open_service: str) -> None:
    context = browser.new_context(base_url=open_service)
    watch = CspWatch()
    context.add_init_script(REPORT_VIOLATIONS)
    context.on("console", watch.on_console)
    context.route("**/", lambda route: route.fulfill(response=route.fetch(), headers={"content-security-policy": CSP}))
    page = context.new_page()
    try:
        page.goto("/")
        assert page.url.endswith("/")  # no sign-in page
        page.wait_for_selector("body[data-loaded=true]")
        page.evaluate("localStorage.clear()")
        assert page.locator("#sign-out").count() == 0 and page.locator("#annotator").is_visible()
        page.fill("#prompt", "Hello?")
        page.check("#paste-mode")
        page.locator(".paste-answer").nth(0).fill("Hi.")
        page.locator(".paste-answer").nth(1).fill("Hello there!")
        page.click("#use-pasted")
        page.click("#submit")
        page.wait_for_selector("#status.error")
        assert "name" in page.text_content("#status")
        page.fill("#annotator", "solo")
        page.click("#submit")
        page.wait_for_selector("#status.ok")
    finally:
        context.close()
    (comparison,) = httpx.get(f"{open_service}/v1/comparisons").json()["items"]
    assert comparison["annotator"] == "solo"
    assert not watch.violations
