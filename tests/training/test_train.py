"""`llmfl train` on the tiny model: every method trains, logs a loss, changes the weights, and registers
a candidate version with its lineage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from llm_feedback_loop.models.loader import load_model
from tests.training.conftest import invoke, write_export

FAST = ("--max-steps", "4", "--batch-size", "4", "--learning-rate", "1e-3", "--save-steps", "2", "--device", "cpu")


def run_show(run_id: int) -> dict:
    code, output = invoke("runs", "show", str(run_id))
    assert code == 0, output
    return json.loads(output)


def logged_losses(output_dir: Path) -> list[float]:
    lines = (output_dir / "metrics.jsonl").read_text().splitlines()
    return [entry["loss"] for entry in map(json.loads, lines) if "loss" in entry]


def weights_changed(base: Path, trained: Path) -> bool:
    """Whether any weight the two models share differs (a reward model shares its backbone)."""
    before, after = load_file(base / "model.safetensors"), load_file(trained / "model.safetensors")
    shared = before.keys() & after.keys()
    assert shared, "the models share no weights"
    return any(not torch.equal(before[name], after[name]) for name in shared)


@pytest.mark.parametrize("precision", [(), ("--bf16",)], ids=["default", "bf16"])
@pytest.mark.parametrize("method", ["sft", "dpo", "kto", "reward"])
def test_each_method_trains_and_registers_a_candidate(
    method: str, precision: tuple[str, ...], training_database: str, tmp_path: Path, tiny_model: Path
) -> None:
    data = write_export(tmp_path / "exports", method, count=24, test=8)
    out = tmp_path / "runs" / method
    code, output = invoke("train", method, "--data", str(data), "--output-dir", str(out), *FAST, *precision)
    assert code == 0, output
    assert "run 1 completed" in output and "registered candidate version" in output

    losses = logged_losses(out)
    assert losses and all(loss == loss for loss in losses)  # logged, and not NaN
    assert weights_changed(tiny_model, out / "model")
    assert (out / "checkpoint-4").is_dir() and (out / "run.yaml").is_file()
    recorded = yaml.safe_load((out / "run.yaml").read_text())["bf16"]  # the precision it ran in
    assert recorded is True if precision else recorded in (True, False)
    saved = load_file(out / "model" / "model.safetensors")
    assert {tensor.dtype for tensor in saved.values()} == {torch.float32}  # the weights stay fp32

    run = run_show(1)
    assert run["status"] == "completed" and run["method"] == method
    assert run["parent_version_id"] == 1 and run["output_version_id"] == 2
    assert run["config"]["max_steps"] == 4 and run["config"]["learning_rate"] == 1e-3
    kind = "dpo" if method == "reward" else method
    files = run["dataset"]["files"]
    assert set(files) == {f"{kind}.train.jsonl", f"{kind}.test.jsonl"}
    assert run["dataset"]["rows"] == {"train": 24, "test": 8}
    assert run["metrics"]["global_step"] == 4 and run["metrics"]["first_loss"] == losses[0]
    if method in ("dpo", "reward"):
        assert 0.0 <= run["metrics"]["preference_accuracy"] <= 1.0  # held-out: chosen scored above rejected
    code, listed = invoke("models", "list")
    assert f"tiny-{method}-run1" in listed and "candidate" in listed


def test_lora_then_dpo_on_the_result(training_database: str, tmp_path: Path, tiny_model: Path) -> None:
    """SFT with LoRA, then DPO on that version with one flag: the adapter parent is merged into its base."""
    sft_data = write_export(tmp_path / "exports", "sft")
    code, output = invoke("train", "sft", "--data", str(sft_data), "--lora", "--output-dir", "sft", *FAST)
    assert code == 0, output
    adapter = tmp_path / "sft" / "model"
    assert (adapter / "adapter_config.json").is_file()
    merged = load_model(str(adapter), device="cpu").model.merge_and_unload()
    base = load_model(str(tiny_model), device="cpu").model
    assert any(
        not torch.equal(p, q) for p, q in zip(merged.state_dict().values(), base.state_dict().values(), strict=True)
    )

    dpo_data = write_export(tmp_path / "exports", "dpo", count=16, test=8)  # evaluated before the merge
    code, output = invoke(
        "train", "dpo", "--data", str(dpo_data), "--model", "2", "--lora", "--merge", "--output-dir", "dpo", *FAST
    )
    assert code == 0, output
    assert (tmp_path / "dpo" / "base" / "config.json").is_file()  # the SFT adapter merged into the tiny base
    assert (tmp_path / "dpo" / "model" / "model.safetensors").is_file()  # --merge: a full model
    run = run_show(2)
    assert run["parent_version_id"] == 2 and run["output_version_id"] == 3
    assert 0.0 <= run["metrics"]["preference_accuracy"] <= 1.0


def test_mode_alias_of_the_original_trainer(training_database: str, tmp_path: Path) -> None:
    data = write_export(tmp_path / "exports", "sft")
    code, output = invoke("train", "--mode", "sft", "--data", str(data), "--output-dir", "out", "--no-register", *FAST)
    assert code == 0, output
    assert run_show(1)["output_version_id"] is None


def test_a_bad_dataset_stops_before_the_model_is_loaded(training_database: str, tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "q", "chosen": "a"}\n')
    code, output = invoke("train", "dpo", "--data", str(data), "--model", "/nonexistent/model", *FAST)
    assert code == 1
    assert 'pairs.jsonl:2: field "rejected" is missing' in output  # not a model-loading error: data first
    code, output = invoke("runs", "list")
    assert "no training runs" in output


def test_the_yaml_config_is_used_and_saved_with_the_run(training_database: str, tmp_path: Path) -> None:
    data = write_export(tmp_path / "exports", "sft")
    config = tmp_path / "sft.yaml"
    config.write_text(f"data: {data}\nmax-steps: 3\nbatch_size: 2\nlearning_rate: 0.002\ndevice: cpu\n")
    code, output = invoke("train", "sft", "--config", str(config), "--max-steps", "2", "--output-dir", "out")
    assert code == 0, output
    saved = run_show(1)["config"]
    assert saved["max_steps"] == 2 and saved["batch_size"] == 2 and saved["learning_rate"] == 0.002
    code, output = invoke("train", "sft", "--config", str(config), "--output-dir", "out")
    assert code == 1 and "holds a run already" in output  # never silently overwrites a run


def test_a_taken_version_name_is_refused_before_training(training_database: str, tmp_path: Path) -> None:
    data = write_export(tmp_path / "exports", "sft")
    code, output = invoke("train", "sft", "--data", str(data), "--name", "tiny", "--output-dir", "out", *FAST)
    assert code == 1 and "exists already" in output
    assert not (tmp_path / "out").exists()


def test_unknown_method_and_missing_data_are_explained(training_database: str) -> None:
    code, output = invoke("train", "nope", "--data", "x.jsonl")
    assert code == 1 and "unknown method 'nope'" in output
    code, output = invoke("train", "sft")
    assert code == 1 and "--data" in output


def test_from_db_exports_and_trains_in_one_step(training_database: str, tmp_path: Path) -> None:
    """Comparisons in the original project's format, imported, then `--from-db`: export + DPO in one command."""
    documents = [
        {
            "prompt": f"What is {a} + {b}?",
            "responses": [
                {"id": "1", "text": f"{a} + {b} = {a + b + 1}."},
                {"id": "2", "text": f"{a} + {b} = {a + b}."},
            ],
            "ranking": [1, 0],
        }
        for a in range(4)
        for b in range(5)
    ]
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text("".join(json.dumps(document) + "\n" for document in documents))
    code, output = invoke("import", str(feedback))
    assert code == 0, output
    code, output = invoke("train", "dpo", "--from-db", "--test-size", "0.25", "--output-dir", "fromdb", *FAST)
    assert code == 0, output
    run = run_show(1)
    assert run["config"]["from_db"] is True
    assert sum(run["dataset"]["rows"].values()) == 20 and run["dataset"]["rows"]["test"] > 0
    assert run["dataset"]["manifest"]["options"]["kind"] == "dpo"  # the export's manifest, kept with the run
    assert set(run["dataset"]["files"]) == {"dpo.train.jsonl", "dpo.test.jsonl"}
    assert "preference_accuracy" in run["metrics"]
    exported = (tmp_path / "fromdb" / "data" / "dpo.train.jsonl").read_text().splitlines()
    first = json.loads(exported[0])
    assert first["chosen"][0]["role"] == "assistant" and first["chosen"] != first["rejected"]


def test_a_diverging_run_is_recorded_with_null_metrics(training_database: str, tmp_path: Path) -> None:
    """A loss that turns NaN must not make the run (or the list of runs) unreadable."""
    data = write_export(tmp_path / "exports", "sft", count=16, test=4)
    args = ("train", "sft", "--data", str(data), "--output-dir", "nan", "--learning-rate", "1e30")
    code, output = invoke(*args, *FAST[:4], "--device", "cpu")
    assert code == 0, output
    run = run_show(1)
    assert run["status"] == "completed"
    assert run["metrics"]["eval_loss"] is None or run["metrics"]["eval_loss"] == run["metrics"]["eval_loss"]
    assert invoke("runs", "list")[0] == 0
    for line in (tmp_path / "nan" / "metrics.jsonl").read_text().splitlines():
        json.loads(line)  # strict JSON: no NaN


def test_output_folders_are_never_overwritten_or_dead_ends(training_database: str, tmp_path: Path) -> None:
    data = write_export(tmp_path / "exports", "sft")
    code, output = invoke("train", "sft", "--data", str(data), "--model", "/no/such/model", "--output-dir", "out")
    assert code == 1 and "does not exist" in output
    code, output = invoke("train", "sft", "--data", str(data), "--output-dir", "out", *FAST)
    assert code == 0, output  # a run that failed before its first checkpoint can be started again
    code, output = invoke("train", "--resume", "--output-dir", "out")
    assert code == 1 and "nothing to resume" in " ".join(output.split())
    code, output = invoke("train", "sft", "--data", str(data), "--output-dir", "out", *FAST)
    assert code == 1 and "holds a run already" in output
    assert [run_show(run)["status"] for run in (1, 2)] == ["failed", "completed"]


def test_kto_keeps_two_examples_per_pass(training_database: str, tmp_path: Path) -> None:
    data = write_export(tmp_path / "exports", "kto")
    args = ("train", "kto", "--data", str(data), "--max-steps", "2", "--learning-rate", "1e-3", "--device", "cpu")
    code, output = invoke(*args, "--batch-size", "3", "--output-dir", "odd")
    assert code == 0, output  # 3 is not a multiple of the CPU micro-batch (2): one pass of 3
    code, output = invoke(*args, "--batch-size", "1", "--output-dir", "one")
    assert code == 1 and "batch_size and micro_batch_size >= 2" in output
    code, output = invoke(*args, "--device", "cuda:1", "--output-dir", "gpu")
    assert code == 1 and "CUDA_VISIBLE_DEVICES" in output
