"""The queue in a real browser: an admin (root) loads tasks from a JSONL file; each signed-in annotator gets
the next task they have not judged; a task given without answers gets them from the model once, so every
annotator judges the same answers; progress and agreement between annotators are shown."""

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


def test_tasks_are_loaded_judged_by_k_annotators_with_agreement(
    admin_page, page, admin_api: httpx.Client, tmp_path: Path
) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(task) + "\n" for task in TASKS))
    root, annie = admin_page, page
    root.goto("/queue")
    root.wait_for_selector("text=No task left for you")
    root.click("details.admin summary")
    root.set_input_files("#task-file", str(tasks))
    root.fill("#task-k", "2")
    root.click("#task-load")
    root.wait_for_selector("#task-title:has-text('Task 1')")
    assert TASKS[0]["prompt"] in root.text_content("#task-prompt")

    root.locator("body").click(position={"x": 5, "y": 5})
    root.keyboard.press("3")  # root: answer 3 best, then 1, then 2
    root.keyboard.press("Enter")
    root.wait_for_selector("#task-title:has-text('Task 2')")
    assert root.locator("#answers .answer").count() == 3  # written by the tiny model
    root.locator("body").click(position={"x": 5, "y": 5})
    root.keyboard.press("Enter")
    root.wait_for_selector("text=No task left for you")

    annie.goto("/queue")
    annie.wait_for_selector("#task-title:has-text('Task 1')")
    assert annie.locator("#task-import").is_hidden()  # loading tasks is for admins
    annie.locator("body").click(position={"x": 5, "y": 5})
    annie.keyboard.press("2")
    annie.keyboard.press("3")  # annie: 3, 2, 1
    screenshot(annie, "queue")
    annie.keyboard.press("Enter")
    annie.wait_for_selector("#task-title:has-text('Task 2')")
    assert "67% agreement" in annie.text_content("#progress")  # task 1: root and annie agree on 2 of 3 pairs

    progress = admin_api.get("/v1/tasks/progress").json()
    comparisons = admin_api.get("/v1/comparisons").json()["items"]
    assert progress["tasks"] == 2 and progress["complete"] == 1 and progress["annotations_done"] == 3
    first = progress["per_task"][0]
    assert first["done"] == 2 and first["agreement"] == pytest.approx(2 / 3)
    by_task = {(c["metadata"]["task_id"], c["annotator"]): c for c in comparisons}
    assert by_task[(1, "root")]["ranking"] == [2, 0, 1] and by_task[(1, "annie")]["ranking"] == [2, 1, 0]
    generated = by_task[(2, "root")]["responses"]
    assert all(response["generation_id"] for response in generated)  # linked to the logged generations


def test_a_bad_task_file_loads_nothing(admin_api: httpx.Client) -> None:
    response = admin_api.post("/v1/tasks/import", content=b'{"prompt": "ok"}\n{"answers": ["a"]}\nnot json\n')
    assert response.status_code == 422
    assert "line 2" in response.json()["message"] and "line 3" in response.json()["message"]
    assert admin_api.get("/v1/tasks/progress").json()["tasks"] == 0
