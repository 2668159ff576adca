"""`POST /v1/runs` stays inside the service's folders: it writes only under CHECKPOINT_DIR, reads only exports
under EXPORTS_DIR (symlinks followed, and saying nothing about files outside), starts only from registered
model versions, and reports only to metrics loggers transformers knows (never importing a client's name)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.test_runs import fast, register_model, runs_service, wait_for_status
from tests.training.conftest import write_export


@pytest.fixture
def runs_client(database_url: str, tmp_path: Path, tiny_model: Path) -> Iterator[TestClient]:
    with runs_service(database_url, tmp_path, tiny_model) as client:
        yield client


def refused(client: TestClient, body: dict, field: str, status: int = 422) -> str:
    """Post `body`, expect `status` naming `field`, and that no run was queued; the message."""
    response = client.post("/v1/runs", json=body)
    assert response.status_code == status, response.text
    message = response.json()["message"]
    assert message.startswith(f"{field}:"), message
    assert client.get("/v1/runs").json() == []
    return message


@pytest.mark.parametrize("output_dir", ["/tmp/llmfl-run", "../escape", "a/../../escape", "..", ".hidden", "~", ""])
def test_output_dir_from_the_api_is_a_plain_name_inside_checkpoint_dir(
    runs_client: TestClient, tmp_path: Path, output_dir: str
) -> None:
    write_export(tmp_path / "exports", "sft", count=8)
    message = refused(runs_client, fast("sft.jsonl", output_dir=output_dir), "output_dir")
    assert "plain folder name" in message
    assert not (tmp_path / "escape").exists() and not Path("/tmp/llmfl-run").exists()


def test_output_dir_cannot_leave_through_a_symlink_or_reuse_a_folder(runs_client: TestClient, tmp_path: Path) -> None:
    write_export(tmp_path / "exports", "sft", count=8)
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    (checkpoints / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    refused(runs_client, fast("sft.jsonl", output_dir="link"), "output_dir")
    assert not (tmp_path / "elsewhere").exists()
    (checkpoints / "taken").mkdir()
    assert "holds another run" in refused(runs_client, fast("sft.jsonl", output_dir="taken"), "output_dir", 409)


def test_data_outside_exports_dir_is_refused_without_saying_anything_about_it(
    runs_client: TestClient, tmp_path: Path
) -> None:
    exports = tmp_path / "exports"
    write_export(exports, "sft", count=8)
    outside = write_export(tmp_path / "elsewhere", "sft", count=8)  # a valid export, but outside
    (exports / "link.jsonl").symlink_to(outside)
    (exports / "split.train.jsonl").symlink_to(outside)  # a split file of "split.jsonl" that leads out
    (exports / "folder").mkdir()
    (exports / "folder" / "data.arrow").symlink_to(Path("/etc/passwd"))  # a "datasets folder" with a way out
    (exports / "loop.jsonl").symlink_to(exports / "loop.jsonl")
    names = [
        "/etc/passwd",
        "/etc/shadow",
        "/etc/no-such-file-here",
        "/proc/self/mem",
        str(outside),
        "../elsewhere/sft.jsonl",
        "link.jsonl",
        "split.jsonl",
        "folder",
        "loop.jsonl",
        "x" * 5000,
    ]
    messages = {refused(runs_client, fast(name), "data") for name in names}
    assert len(messages) == 1  # the same answer whether a file exists outside, can be read, or not
    (message,) = messages
    assert "EXPORTS_DIR" in message and "/etc" not in message and "line" not in message


def test_data_inside_exports_dir_is_checked_and_may_be_a_relative_name(runs_client: TestClient, tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "pairs.jsonl").write_text(json.dumps({"prompt": "q", "chosen": "a"}) + "\n")
    message = refused(runs_client, {"method": "dpo", "data": "pairs.jsonl"}, "data")
    assert 'pairs.jsonl:1: field "rejected" is missing' in message
    assert "missing.jsonl does not exist" in refused(runs_client, {"method": "sft", "data": "missing.jsonl"}, "data")


def test_model_from_the_api_is_a_registered_chat_model_version(
    runs_client: TestClient, tmp_path: Path, tiny_model: Path, database_url: str
) -> None:
    write_export(tmp_path / "exports", "sft", count=8)
    for model in (str(tiny_model), "HuggingFaceTB/SmolLM2-135M-Instruct", "/etc", "999"):
        assert "no registered model version" in refused(runs_client, fast("sft.jsonl", model=model), "model")
    register_model(database_url, tiny_model, "judge", method="reward")
    assert "reward model" in refused(runs_client, fast("sft.jsonl", model="judge"), "model")


def test_an_online_runs_rewards_from_the_api_are_registered_reward_models_only(
    runs_client: TestClient, tmp_path: Path, tiny_model: Path, database_url: str
) -> None:
    """A client never names code for the service to import (fn:...), nor a folder; a reward model version is
    pinned by id."""
    exports = tmp_path / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    (exports / "prompt.jsonl").write_text("".join(json.dumps({"prompt": f"q{i}"}) + "\n" for i in range(4)))
    marker = tmp_path / "imported"
    (tmp_path / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('x')\n"
        "def f(prompts, completions, **k):\n    return [0.0] * len(completions)\n"
    )
    online = {"method": "grpo", "batch_size": 4, "num_generations": 2, "max_completion_length": 8}
    for reward in (f"fn:{tmp_path / 'evil.py'}:f", "fn:os:system", str(tiny_model), "/etc", "tiny", "999"):
        body = fast("prompt.jsonl", reward=[reward], **online)
        assert "not a registered reward model version" in refused(runs_client, body, "reward")
    assert not marker.exists()
    many = fast("prompt.jsonl", reward=["judge"] * 9, **online)
    assert "at most 8" in refused(runs_client, many, "reward")
    assert "less than or equal to 64" in refused(
        runs_client, fast("prompt.jsonl", **online | {"num_generations": 65}), "num_generations"
    )
    register_model(database_url, tiny_model, "judge", method="reward")
    response = runs_client.post("/v1/runs", json=fast("prompt.jsonl", reward=["judge"], **online))
    assert response.status_code == 202, response.text
    assert [reward.isdigit() for reward in response.json()["config"]["reward"]] == [True]  # pinned by id
    run = wait_for_status(runs_client, response.json()["id"], {"completed", "failed"})  # not left running
    assert run["status"] == "completed", run["error"]
    assert run["dataset"]["rewards"][0]["name"] == "judge"


def test_report_to_is_an_allowlist_and_a_clients_module_is_never_imported(
    runs_client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_export(tmp_path / "exports", "sft", count=8)
    modules, marker = tmp_path / "modules", tmp_path / "imported"
    (modules / "llmfl_probe_package").mkdir(parents=True)
    code = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    (modules / "llmfl_probe_module.py").write_text(code)
    (modules / "llmfl_probe_package" / "__init__.py").write_text(code)
    (modules / "llmfl_probe_package" / "sub.py").write_text(code)
    monkeypatch.syspath_prepend(str(modules))
    for reporter in ("llmfl_probe_module", "llmfl_probe_package.sub", "os.path", "all"):
        message = refused(runs_client, fast("sft.jsonl", report_to=[reporter]), "report_to")
        assert "unknown metrics logger" in message and "wandb" in message
    assert not marker.exists()
    assert not {"llmfl_probe_module", "llmfl_probe_package"} & set(sys.modules)
    assert "pip install comet_ml" in refused(runs_client, fast("sft.jsonl", report_to=["comet_ml"]), "report_to")


@pytest.mark.parametrize(
    "field", ["data", "output_dir", "model", "name", "description", "strategy", "lora_target_modules"]
)
def test_text_the_database_cannot_store_is_refused_by_field(
    runs_client: TestClient, tmp_path: Path, field: str
) -> None:
    write_export(tmp_path / "exports", "sft", count=8)
    assert "NUL" in refused(runs_client, {**fast("sft.jsonl"), field: "a\x00b"}, field)
    body = json.dumps({**fast("sft.jsonl"), field: "SURROGATE"}).replace("SURROGATE", "a\\ud800b")
    response = runs_client.post("/v1/runs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "surrogate" in response.json()["message"]  # refused as JSON already
    assert runs_client.get("/v1/runs").json() == []


def test_a_metrics_line_cut_short_is_left_out_not_a_500(tmp_path: Path) -> None:
    """A run killed while writing its metrics log leaves half a line: the entries before it are still read."""
    from llm_feedback_loop.api.routes.runs import logged_entries

    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 1, "loss": 0.7}\n\n[1, 2]\n{"step": 2, "lo', encoding="utf-8")
    assert logged_entries(log) == [{"step": 1, "loss": 0.7}]
    assert logged_entries(tmp_path / "missing.jsonl") == []


def test_a_runs_log_is_shown_with_its_credentials_redacted(tmp_path: Path) -> None:
    """The log is the training process's raw output (a traceback is no log record): it is redacted when shown."""
    from llm_feedback_loop.api.routes.runs import shown_log
    from llm_feedback_loop.training.scheduler import LOG_FILE

    key = "llmfl_abcdefgh_" + "s" * 32
    (tmp_path / LOG_FILE).write_text(
        f"step 1\nrequests.exceptions.HTTPError: 401 for url: https://user:hunter22@example.org/x\nkey {key}\n",
        encoding="utf-8",
    )
    shown = shown_log(tmp_path, 200)
    assert "step 1" in shown and "hunter22" not in shown and key not in shown and "llmfl_abcdefgh_" in shown
