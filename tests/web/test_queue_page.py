"""The queue in a real browser: an admin loads tasks from a JSONL file; each annotator gets the next task
they have not judged; a task given without answers gets them from the model once, so every annotator
judges the same answers; progress and agreement between annotators are shown."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import screenshot

TASKS = [
    {
        "prompt": "Which answer is most polite?",
        "answers": ["Go away.", "Sure, happy to help!", "Hello, how can I help?"],
    },
    {"prompt": "Name a colour."},
]


def as_annotator(page, name: str) -> None:
    page.fill("#annotator", name)
    page.dispatch_event("#annotator", "change")


def test_tasks_are_loaded_judged_by_k_annotators_with_agreement(page, live_service: str, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(task) + "\n" for task in TASKS))
    page.goto("/queue")
    as_annotator(page, "ana")
    page.wait_for_selector("text=No task left for you")
    page.click("details.admin summary")
    page.set_input_files("#task-file", str(tasks))
    page.fill("#task-k", "2")
    page.click("#task-load")
    page.wait_for_selector("#task-title:has-text('Task 1')")
    assert TASKS[0]["prompt"] in page.text_content("#task-prompt")

    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("3")  # ana: answer 3 best, then 1, then 2
    page.keyboard.press("Enter")
    page.wait_for_selector("#task-title:has-text('Task 2')")
    assert page.locator("#answers .answer").count() == 3  # written by the tiny model
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No task left for you")

    as_annotator(page, "bo")
    page.wait_for_selector("#task-title:has-text('Task 1')")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("2")
    page.keyboard.press("3")  # bo: 3, 2, 1
    screenshot(page, "queue")
    page.keyboard.press("Enter")
    page.wait_for_selector("#task-title:has-text('Task 2')")
    assert "67% agreement" in page.text_content("#progress")  # task 1: ana and bo agree on 2 of 3 pairs

    with httpx.Client(base_url=live_service) as api:
        progress = api.get("/v1/tasks/progress").json()
        comparisons = api.get("/v1/comparisons").json()["items"]
    assert progress["tasks"] == 2 and progress["complete"] == 1 and progress["annotations_done"] == 3
    first = progress["per_task"][0]
    assert first["done"] == 2 and first["agreement"] == pytest.approx(2 / 3)
    by_task = {(c["metadata"]["task_id"], c["annotator"]): c for c in comparisons}
    assert by_task[(1, "ana")]["ranking"] == [2, 0, 1] and by_task[(1, "bo")]["ranking"] == [2, 1, 0]
    generated = by_task[(2, "ana")]["responses"]
    assert all(response["generation_id"] for response in generated)  # linked to the logged generations


def test_a_bad_task_file_loads_nothing(live_service: str) -> None:
    with httpx.Client(base_url=live_service) as api:
        response = api.post("/v1/tasks/import", content=b'{"prompt": "ok"}\n{"answers": ["a"]}\nnot json\n')
        assert response.status_code == 422
        assert "line 2" in response.json()["message"] and "line 3" in response.json()["message"]
        assert api.get("/v1/tasks/progress").json()["tasks"] == 0
