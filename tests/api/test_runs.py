"""`/v1/runs`: training started from the API runs as a background process; it is polled, stopped with a
checkpoint, resumed, and its metrics and log are readable. Bad requests are answered before anything runs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from llm_feedback_loop.models.registry import add_version
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.engine import create_engine, create_session_factory
from llm_feedback_loop.storage.migrate import upgrade_to_head
from tests.support.accounts import admin_client
from tests.training.conftest import write_export


def runs_settings(database_url: str, tmp_path: Path, **extra: Any) -> Settings:
    """The service's settings for run tests: its checkpoint and exports folders in tmp_path."""
    return Settings(
        database_url=database_url,
        checkpoint_dir=tmp_path / "checkpoints",
        exports_dir=tmp_path / "exports",
        _env_file=None,  # type: ignore[call-arg]
        **extra,
    )


def register_model(database_url: str, source: Path | str, name: str, method: str = "manual") -> int:
    """Register a model version as `llmfl models add` does; its id."""

    async def register() -> int:
        engine = create_engine(Settings(database_url=database_url, _env_file=None).database_url)  # type: ignore[call-arg]
        try:
            await upgrade_to_head(engine)
            async with create_session_factory(engine)() as session:
                return (await add_version(session, str(source), name=name, method=method)).id
        finally:
            await engine.dispose()

    return asyncio.run(register())


@contextmanager
def runs_service(database_url: str, tmp_path: Path, tiny_model: Path, **settings: Any) -> Iterator[TestClient]:
    """An admin's client of a service whose registry holds the tiny model as version `tiny`."""
    with admin_client(runs_settings(database_url, tmp_path, **settings)) as client:
        register_model(database_url, tiny_model, "tiny")
        yield client


@pytest.fixture
def runs_client(database_url: str, tmp_path: Path, tiny_model: Path) -> Iterator[TestClient]:
    with runs_service(database_url, tmp_path, tiny_model) as client:
        yield client


def wait_for_status(client: TestClient, run_id: int, wanted: set[str], timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/v1/runs/{run_id}").json()
        if run["status"] in wanted:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']}: {run}"
        time.sleep(0.2)


def fast(data: Path | str, **extra: object) -> dict:
    """A run of a few steps of the registered tiny model."""
    return {
        "method": "sft",
        "data": str(data),
        "model": "tiny",
        "max_steps": 3,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "device": "cpu",
        **extra,
    }


def test_a_run_started_from_the_api_completes_and_registers(runs_client: TestClient, tmp_path: Path) -> None:
    data = write_export(tmp_path / "exports", "sft", count=16, test=4)
    response = runs_client.post("/v1/runs", json=fast("sft.jsonl"))  # a name inside EXPORTS_DIR
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["status"] == "queued" and queued["method"] == "sft"
    assert Path(queued["output_dir"]).parent == (tmp_path / "checkpoints").resolve()
    assert queued["config"]["data"] == str(data.resolve())
    assert queued["config"]["model"].isdigit()  # pinned to the version the request named

    run = wait_for_status(runs_client, queued["id"], {"completed", "failed"})
    assert run["status"] == "completed", runs_client.get(f"/v1/runs/{run['id']}/log").text
    assert run["metrics"]["global_step"] == 3 and "eval_loss" in run["metrics"]
    assert run["dataset"]["rows"] == {"train": 16, "test": 4} and len(run["dataset"]["files"]) == 2
    assert run["output_version_id"] is not None
    losses = [entry["loss"] for entry in runs_client.get(f"/v1/runs/{run['id']}/metrics").json() if "loss" in entry]
    assert losses
    assert "completed" in runs_client.get(f"/v1/runs/{run['id']}/log").text
    assert [item["id"] for item in runs_client.get("/v1/runs").json()] == [run["id"]]
    assert runs_client.post(f"/v1/runs/{run['id']}/stop").status_code == 409


def test_stop_leaves_a_checkpoint_and_resume_continues(runs_client: TestClient, tmp_path: Path) -> None:
    data = write_export(tmp_path / "exports", "sft", count=16)
    response = runs_client.post("/v1/runs", json=fast(data, max_steps=100000, save_steps=5, lora=True))
    run_id = response.json()["id"]
    output_dir = Path(response.json()["output_dir"])
    deadline = time.monotonic() + 120
    while not (output_dir / "checkpoint-5").is_dir():
        assert time.monotonic() < deadline and runs_client.get(f"/v1/runs/{run_id}").json()["status"] != "failed"
        time.sleep(0.1)
    assert runs_client.post(f"/v1/runs/{run_id}/stop").status_code == 202
    stopped = wait_for_status(runs_client, run_id, {"interrupted", "failed"})
    assert stopped["status"] == "interrupted", runs_client.get(f"/v1/runs/{run_id}/log").text
    stopped_at = stopped["metrics"]["global_step"]

    assert runs_client.post(f"/v1/runs/{run_id}/resume").status_code == 202
    wait_for_status(runs_client, run_id, {"running"})
    deadline = time.monotonic() + 120
    while not any(entry["step"] > stopped_at for entry in runs_client.get(f"/v1/runs/{run_id}/metrics").json()):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert runs_client.post(f"/v1/runs/{run_id}/stop").status_code == 202
    resumed = wait_for_status(runs_client, run_id, {"interrupted", "failed"})
    assert resumed["status"] == "interrupted" and resumed["metrics"]["global_step"] > stopped_at
    log = runs_client.get(f"/v1/runs/{run_id}/log").text
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({"method": "sft", "data": "x.jsonl", "epochz": 1}, 422, "epochz"),
        ({"method": "ppo", "data": "x.jsonl"}, 422, "method"),
        ({"method": "sft"}, 422, "--data"),
        ({"method": "sft", "data": "missing.jsonl"}, 422, "missing.jsonl does not exist"),
        ({"method": "sft", "data": "x.jsonl", "model": "/no/such/model"}, 422, "model"),
    ],
)
def test_bad_run_requests_are_refused_before_anything_runs(
    runs_client: TestClient, body: dict, status: int, named: str, tmp_path: Path
) -> None:
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "x.jsonl").write_text(json.dumps({"prompt": "q", "completion": "a"}) + "\n")
    body = {**body, "data": str(tmp_path / "exports" / body["data"])} if "data" in body else body
    response = runs_client.post("/v1/runs", json=body)
    assert response.status_code == status
    assert named in response.json()["message"]
    assert runs_client.get("/v1/runs").json() == []


def test_a_bad_dataset_is_answered_with_its_line(runs_client: TestClient, tmp_path: Path) -> None:
    data = tmp_path / "exports" / "pairs.jsonl"
    data.parent.mkdir()
    data.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "q"}\n')
    response = runs_client.post("/v1/runs", json={"method": "dpo", "data": str(data)})
    assert response.status_code == 422
    assert 'pairs.jsonl:2: field "chosen" is missing' in response.json()["message"]
    assert runs_client.get("/v1/runs/999").status_code == 404
