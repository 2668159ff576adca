"""GRPO and RLOO on the tiny model: rewards from a function, a reward model version, and both; what they log;
the lineage of the candidate (its rewards included); and the rewards refused before the policy loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.conftest import invoke, write_export

FAST = (
    "--max-steps", "2", "--batch-size", "4", "--num-generations", "2", "--max-completion-length", "8",
    "--learning-rate", "1e-3", "--save-steps", "1", "--device", "cpu", "--no-evaluate",
)  # fmt: skip

REWARDS = """
def shorter(prompts, completions, **columns):
    return [-float(len(c[-1]["content"])) for c in completions]

def polite(prompt, answer):
    return 1.0 if "please" in answer.lower() else 0.0

def too_few(prompts, completions, **columns):
    return [0.0]
"""


def prompts_export(folder: Path, count: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "prompt.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"What is {i} + 1?"}) + "\n" for i in range(count)))
    return path


def run_show(run_id: int) -> dict:
    code, output = invoke("runs", "show", str(run_id))
    assert code == 0, output
    return json.loads(output)


@pytest.fixture
def rewards_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_rewards.py"
    path.write_text(REWARDS, encoding="utf-8")
    return path


def logged(output_dir: Path) -> list[dict]:
    lines = (output_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.parametrize("method", ["grpo", "rloo"])
def test_an_online_method_trains_on_a_function_and_registers_its_lineage(
    method: str, training_database: str, tmp_path: Path, rewards_file: Path
) -> None:
    data = prompts_export(tmp_path / "exports")
    code, output = invoke(
        "train", method, "--data", str(data), "--output-dir", method,
        "--reward", f"fn:{rewards_file}:shorter", "--reward", f"fn:{rewards_file}:polite",
        "--reward-weight", "1", "--reward-weight", "0.5", *FAST,
    )  # fmt: skip
    assert code == 0, output
    run = run_show(1)
    assert run["status"] == "completed" and run["method"] == method and run["output_version_id"]
    assert [item["function"] for item in run["dataset"]["rewards"]] == [
        f"{rewards_file}:shorter",
        f"{rewards_file}:polite",
    ]
    keys = set().union(*logged(tmp_path / method))
    assert {"reward", "reward_std", "frac_reward_zero_std"} <= keys and any(
        key.startswith("completions/") for key in keys
    )
    assert any(key.startswith("kl") for key in keys)  # beta > 0 by default: the pull to the reference is logged


def test_grpo_samples_and_trains_in_bf16_mixed_precision_when_asked(
    training_database: str, tmp_path: Path, rewards_file: Path
) -> None:
    data = prompts_export(tmp_path / "exports")
    reward = f"fn:{rewards_file}:shorter"
    code, output = invoke(
        "train", "grpo", "--data", str(data), "--output-dir", "g", "--reward", reward, *FAST, "--bf16"
    )
    assert code == 0, output
    assert run_show(1)["status"] == "completed"
    assert all(entry.get("loss", 0) == entry.get("loss", 0) for entry in logged(tmp_path / "g"))  # no NaN


@pytest.mark.parametrize("method", ["grpo", "rloo"])
@pytest.mark.parametrize("rewards", ["model", "model+function"])
def test_an_online_method_is_rewarded_by_a_reward_model_version(
    method: str, rewards: str, training_database: str, tmp_path: Path, rewards_file: Path
) -> None:
    pairs = write_export(tmp_path / "exports", "reward")
    code, output = invoke("train", "reward", "--data", str(pairs), "--output-dir", "rm", "--name", "judge",
                          "--max-steps", "2", "--batch-size", "4", "--device", "cpu")  # fmt: skip
    assert code == 0, output
    data = prompts_export(tmp_path / "exports")
    given = ["--reward", "judge"] + (["--reward", f"fn:{rewards_file}:shorter"] if "function" in rewards else [])
    code, output = invoke("train", method, "--data", str(data), "--output-dir", "policy", *given, *FAST)
    assert code == 0, output
    run = run_show(2)
    assert run["status"] == "completed" and run["output_version_id"]
    recorded = run["dataset"]["rewards"]
    assert recorded[0]["name"] == "judge" and recorded[0]["version_id"] == run_show(1)["output_version_id"]
    assert len(recorded) == (2 if "function" in rewards else 1)


def test_rewards_are_refused_before_the_policy_loads(
    training_database: str, tmp_path: Path, rewards_file: Path
) -> None:
    data = prompts_export(tmp_path / "exports")
    code, output = invoke("train", "grpo", "--data", str(data), "--reward", "tiny", *FAST)
    text = " ".join(output.split())
    assert code == 1 and "version tiny was made by" in text and "not `llmfl train reward`" in text
    code, output = invoke("train", "grpo", "--data", str(data), "--reward", f"fn:{rewards_file}:too_few", *FAST)
    text = " ".join(output.split())
    assert code == 1 and "returned 1 scores for 4 completions" in text
    code, output = invoke("train", "rloo", "--data", str(data), *FAST)
    assert code == 1 and "needs a reward" in " ".join(output.split())
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").rglob("model"))


@pytest.mark.parametrize("method", ["grpo", "rloo"])
def test_an_interrupted_online_run_resumes_with_its_rewards(
    method: str, training_database: str, tmp_path: Path, rewards_file: Path
) -> None:
    import signal
    import subprocess
    import sys

    from tests.training.test_processes import environment, trainer_step, wait_for

    data = prompts_export(tmp_path / "exports")
    out = tmp_path / "online"
    settings = [*FAST[4:]]  # everything but --max-steps 2 and --batch-size 4
    command = [
        sys.executable,
        "-m",
        "llm_feedback_loop",
        "train",
        "grpo",
        "--data",
        str(data),
        "--output-dir",
        str(out),
    ]
    command += ["--reward", f"fn:{rewards_file}:shorter", "--max-steps", "2000", "--batch-size", "4", *settings]
    process = subprocess.Popen(
        command, env=environment(training_database), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wait_for(out / "checkpoint-2" / "trainer_state.json", process)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    stopped_at = max(trainer_step(path) for path in out.glob("checkpoint-*"))

    code, output = invoke("train", "--resume", "--output-dir", str(out), "--max-steps", str(stopped_at + 2))
    assert code == 0, output
    run = run_show(1)
    assert run["status"] == "completed" and run["metrics"]["global_step"] == stopped_at + 2
    assert run["config"]["reward"] == [f"fn:{rewards_file}:shorter"]  # the interrupted run's rewards, kept
    assert "last_reward" in run["metrics"] and "last_frac_reward_zero_std" in run["metrics"]


def test_ppo_is_an_alias_that_says_it_runs_grpo(training_database: str, tmp_path: Path, rewards_file: Path) -> None:
    data = prompts_export(tmp_path / "exports")
    code, output = invoke("train", "ppo", "--data", str(data), "--reward", f"fn:{rewards_file}:shorter", *FAST)
    assert code == 0, output
    assert "training with grpo" in " ".join(output.split()) and run_show(1)["method"] == "grpo"


def test_an_openai_compatible_judge_rewards_grpo_and_an_unreachable_one_is_refused_first(
    training_database: str, tmp_path: Path
) -> None:
    from tests.support.fake_openai import fake_openai_server

    data = prompts_export(tmp_path / "exports")
    with fake_openai_server() as url:  # it answers "answer N to ...": rated N (of 10)
        code, output = invoke(
            "train", "grpo", "--data", str(data), "--reward", url, "--reward-judge-model", "fake-model", *FAST
        )
    assert code == 0, output
    assert run_show(1)["dataset"]["rewards"] == [{"reward": url, "judge_model": "fake-model"}]
    code, output = invoke("train", "grpo", "--data", str(data), "--reward", "http://127.0.0.1:9/v1", *FAST)
    assert code == 1 and "the judge did not answer" in " ".join(output.split())
