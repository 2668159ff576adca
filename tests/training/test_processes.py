"""Training as real processes: Ctrl-C leaves a checkpoint and `--resume` continues from it; the same
command under `accelerate launch` trains in 2 CPU processes (DDP) and records one run. A process the
service starts inherits a minimal environment, without the service's secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from llm_feedback_loop.training.scheduler import child_environment
from tests.support.postgres import free_port
from tests.training.conftest import invoke, write_export


def environment(database_url: str) -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": database_url,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def without_progress_bars(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "it/s]" not in line and "examples/s]" not in line)


def trainer_step(checkpoint: Path) -> int:
    return json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]


def test_ctrl_c_leaves_a_checkpoint_and_resume_continues_it(training_database: str, tmp_path: Path) -> None:
    data = write_export(tmp_path / "exports", "sft", count=24)
    out = tmp_path / "interrupted"
    command = [sys.executable, "-m", "llm_feedback_loop", "train", "sft", "--data", str(data), "--lora"]
    command += ["--output-dir", str(out), "--max-steps", "2000", "--batch-size", "4", "--save-steps", "5"]
    process = subprocess.Popen(
        command, env=environment(training_database), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wait_for(out / "checkpoint-5" / "trainer_state.json", process)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert "interrupted" in output and "--resume" in output and "Traceback" not in output
    checkpoints = sorted(out.glob("checkpoint-*"), key=trainer_step)
    stopped_at = trainer_step(checkpoints[-1])
    assert 5 < stopped_at < 2000  # a checkpoint of the step it stopped at, not only the periodic one
    assert not (out / "model").exists()
    code, shown = invoke("runs", "show", "1")
    assert json.loads(shown)["status"] == "interrupted"

    code, output = invoke("train", "--resume", "--output-dir", str(out), "--max-steps", str(stopped_at + 4))
    assert code == 0, output
    run = json.loads(invoke("runs", "show", "1")[1])  # the same run, continued
    assert run["status"] == "completed" and run["metrics"]["global_step"] == stopped_at + 4
    assert run["config"]["lora"] is True  # the interrupted run's settings, kept
    assert (out / "model" / "adapter_config.json").is_file()
    logged_steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert min(step for step in logged_steps if step > stopped_at) > stopped_at  # continued, not restarted
    assert invoke("runs", "list")[1].count("completed") == 1


def test_resume_without_a_checkpoint_is_explained(training_database: str, tmp_path: Path) -> None:
    code, output = invoke("train", "--resume", "--output-dir", str(tmp_path / "nothing"))
    assert code == 1 and "no run to resume" in output
    code, output = invoke("train", "--resume")
    assert code == 1 and "no interrupted run" in output


def train_in_two_processes(database_url: str, method: str, *options: str) -> None:
    """`llmfl train METHOD OPTIONS` under `accelerate launch` in 2 CPU processes (batches of 4), to the end."""
    launcher = Path(sys.executable).with_name("accelerate")
    command = [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    command += ["--main_process_port", str(free_port())]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", "-m", "llm_feedback_loop", "train", method]
    command += [*options, "--batch-size", "4", "--device", "cpu", "--save-steps", "100"]
    result = subprocess.run(
        command, env=environment(database_url), capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, without_progress_bars(result.stdout + result.stderr)[-8000:]
    assert "training in 2 processes" in result.stderr


def test_two_processes_under_accelerate_launch(training_database: str, tmp_path: Path) -> None:
    data = write_export(tmp_path / "exports", "sft", count=24)
    out = tmp_path / "ddp"
    train_in_two_processes(training_database, "sft", "--data", str(data), "--output-dir", str(out), "--max-steps", "3")
    run = json.loads(invoke("runs", "show", "1")[1])
    assert run["status"] == "completed"
    # 3 steps × 4 examples × 2 processes = 24 examples: one full epoch of the 24 rows.
    assert run["metrics"]["epoch"] == 1.0
    assert invoke("runs", "list")[1].count("completed") == 1  # one run recorded, by the main process only
    assert (out / "model" / "model.safetensors").is_file()


def test_an_online_method_under_accelerate_launch(training_database: str, tmp_path: Path) -> None:
    """GRPO in 2 CPU processes: each samples answers to its share of the prompts, one run is recorded."""
    rewards = tmp_path / "my_rewards.py"
    rewards.write_text("def shorter(prompt, answer):\n    return -float(len(answer))\n", encoding="utf-8")
    data = tmp_path / "prompt.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"What is {i} + 1?"}) + "\n" for i in range(8)))
    out = tmp_path / "ddp-grpo"
    train_in_two_processes(
        training_database, "grpo", "--data", str(data), "--output-dir", str(out), "--max-steps", "2",
        "--num-generations", "2", "--max-completion-length", "8", "--reward", f"fn:{rewards}:shorter", "--no-evaluate",
    )  # fmt: skip
    run = json.loads(invoke("runs", "show", "1")[1])
    assert run["status"] == "completed" and run["metrics"]["global_step"] == 2
    assert invoke("runs", "list")[1].count("completed") == 1
    assert (out / "model" / "adapter_config.json").is_file()  # LoRA: the online methods' default


def test_a_service_started_run_inherits_no_secrets_but_its_loggers_keys() -> None:
    parent = {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "LC_ALL": "C.UTF-8",
        "HF_HOME": "/cache/hf",
        "HF_TOKEN": "hf_secret",
        "CUDA_VISIBLE_DEVICES": "0",
        "OMP_NUM_THREADS": "1",
        "CHAT_PROVIDER_API_KEY": "sk-1",
        "OPENROUTER_API_KEY": "sk-2",
        "JUDGE_API_KEY": "sk-3",
        "LLMFL_API_KEY": "llmfl_x_y",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "GITHUB_TOKEN": "gh",
        "WANDB_API_KEY": "wandb-key",
        "WANDB_PROJECT": "loop",
        "DATABASE_URL": "sqlite:///elsewhere.db",
    }

    def environment(*report_to: str) -> dict[str, str]:
        return child_environment(
            parent,
            database_url="sqlite+aiosqlite:///service.db",
            checkpoint_dir=Path("ckpt"),
            base_model="/m",
            report_to=report_to,
        )

    plain = environment()
    assert plain == {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "LC_ALL": "C.UTF-8",
        "HF_HOME": "/cache/hf",
        "CUDA_VISIBLE_DEVICES": "0",
        "OMP_NUM_THREADS": "1",
        "DATABASE_URL": "sqlite+aiosqlite:///service.db",  # the service's database, not the shell's
        "CHECKPOINT_DIR": str(Path("ckpt").resolve()),
        "BASE_MODEL": "/m",
        "TOKENIZERS_PARALLELISM": "false",
    }
    with_wandb = environment("wandb")
    assert with_wandb.keys() - plain.keys() == {"WANDB_API_KEY", "WANDB_PROJECT"}
    assert environment("tensorboard") == plain
