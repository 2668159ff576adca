"""The dashboard in a real browser, signed in as an admin: counts over time and by annotator, export
contents, model versions with lineage, training runs with loss curves; names from users are shown as text."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.web.conftest import screenshot

HOSTILE_NAME = '<img src="x" onerror="window.__xss = 1">mallory'


def llmfl(database: Path, *args: str) -> str:
    environment = os.environ | {"DATABASE_URL": f"sqlite:///{database}", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "llm_feedback_loop", *args], env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def seed_feedback(api: httpx.Client) -> None:
    """Feedback sent with an admin's key: three ratings of root's own, and two on behalf of annotators."""
    for index in range(3):
        api.post("/feedback", json={"prompt": f"q{index}", "response": f"a{index}", "rating": "up"}).raise_for_status()
    api.post(
        "/v1/ratings", json={"prompt": "q9", "response": "bad", "rating": "down", "annotator": HOSTILE_NAME}
    ).raise_for_status()
    api.post(
        "/v1/comparisons",
        json={"prompt": "q1", "responses": [{"text": "x"}, {"text": "y"}], "ranking": [1, 0], "annotator": "ana"},
    ).raise_for_status()


def test_dashboard_shows_counts_exports_lineage_and_loss_curves(
    admin_page, admin_api: httpx.Client, tmp_path: Path, tiny_model: Path
) -> None:
    page = admin_page
    seed_feedback(admin_api)
    database = tmp_path / "web.db"
    llmfl(database, "models", "add", str(tiny_model), "--name", "tiny", "--activate")
    export = tmp_path / "sft.jsonl"
    llmfl(database, "export", "sft", "--out", str(export))
    llmfl(
        database,
        "train",
        "sft",
        "--data",
        str(export),
        "--max-steps",
        "6",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--output-dir",
        str(tmp_path / "run"),
        "--learning-rate",
        "1e-3",
    )

    page.goto("/dashboard")
    page.wait_for_selector("body[data-loaded=true]")
    ratings = page.locator('#over-time rect[data-key="rating"]').evaluate_all(
        "els => els.reduce((sum, e) => sum + Number(e.dataset.value), 0)"
    )
    assert ratings == 4
    assert page.locator('#over-time rect[data-key="comparison"]').count() == 1
    annotators = page.text_content("#by-annotator")
    assert HOSTILE_NAME in annotators and "ana" in annotators and "root" in annotators
    assert page.locator("#by-annotator img").count() == 0 and page.evaluate("window.__xss") is None
    assert page.text_content('#exports .card[data-kind="sft"] .big') == "3 rows"
    assert page.text_content('#exports .card[data-kind="dpo"] .big') == "1 row"  # the ranking
    assert "3 desirable / 1 undesirable" in page.text_content('#exports .card[data-kind="kto"] .balance')
    assert page.get_attribute('#exports .card[data-kind="kto"] a', "href").startswith("/v1/export/kto")
    child = page.locator('#versions li.version[data-id="1"] li.version[data-id="2"]')
    assert child.count() == 1 and "tiny-sft-run1" in child.text_content()  # lineage: run 1's version under tiny
    points = page.get_attribute('#runs .card[data-run="1"] polyline', "data-points")
    assert points is not None and int(points) >= 2
    assert "completed" in page.text_content('#runs .card[data-run="1"]')
    assert page.locator('#runs .card[data-run="1"] button').count() == 0  # a completed run: nothing to stop or resume
    screenshot(page, "dashboard")


def test_an_admin_resumes_a_failed_run_from_the_dashboard(admin_page, admin_api: httpx.Client) -> None:
    """A run that failed before its first checkpoint offers Resume; the service's refusal is shown."""
    run = admin_api.post("/v1/runs", json={"method": "sft", "from_db": True, "max_steps": 1, "device": "cpu"})
    assert run.status_code == 202, run.text
    run_id = run.json()["id"]
    for _ in range(240):  # the process fails on an empty database: nothing to train on
        if admin_api.get(f"/v1/runs/{run_id}").json()["status"] == "failed":
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"run {run_id} did not fail: {admin_api.get(f'/v1/runs/{run_id}').json()}")

    page = admin_page
    page.goto("/dashboard")
    page.wait_for_selector("body[data-loaded=true]")
    card = page.locator(f'#runs .card[data-run="{run_id}"]')
    assert card.locator("button.stop").count() == 0
    card.locator("button.resume").click()
    page.wait_for_selector("#status.error")
    assert f"Run {run_id}: run {run_id} has no checkpoint to resume from" in page.text_content("#status")
