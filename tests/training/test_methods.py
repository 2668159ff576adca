"""The training methods are modules found by discovery: each declares its dataset kind, learning rates, head,
checks and settings, and a new module is a new method for the config, the CLI and the API without another edit."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from llm_feedback_loop.cli import train as cli_train
from llm_feedback_loop.settings import get_settings
from llm_feedback_loop.training import config as train_config
from llm_feedback_loop.training import methods
from llm_feedback_loop.training.methods import all_methods, makes_reward_model, method_of, method_settings
from llm_feedback_loop.training.methods.base import CAUSAL_LM, SCORE
from llm_feedback_loop.training_data.kinds import KINDS

ECHO = '''"""A method for the test: SFT under another name, with a setting of its own."""

from typing import ClassVar

from pydantic import Field

from llm_feedback_loop.training.methods.base import LearningRates, Setting, TrainingMethod


class Echo(TrainingMethod):
    name = "echo"
    summary = "a test method"
    kind = "sft"
    learning_rates = LearningRates(full=1e-5, lora=1e-4)
    settings: ClassVar[dict[str, Setting]] = {
        "echo_rounds": (int, Field(default=3, ge=1, description="Echo: how many rounds.")),
        "echo_word": (str, Field(default="hello", description="Echo: the word.")),
    }

    def build_trainer(self, job):
        raise NotImplementedError


METHOD = Echo()
'''


def test_the_methods_are_found_in_their_order_with_what_they_declare() -> None:
    assert list(all_methods())[:4] == ["sft", "dpo", "kto", "reward"]  # the offline methods first; more may follow
    for name, method in all_methods().items():
        assert method.name == name and method.kind in KINDS
        assert method.learning_rates.lora > method.learning_rates.full > 0
    assert method_of("reward").head is SCORE and method_of("dpo").head is CAUSAL_LM
    assert makes_reward_model("reward") and not makes_reward_model("sft") and not makes_reward_model("manual")
    assert method_settings()["beta"] is method_of("dpo").settings["beta"] is method_of("kto").settings["beta"]
    assert {"beta", "sft_weight"} <= set(train_config.TrainConfig.model_fields)
    with pytest.raises(ValueError, match="unknown method 'nope'; choose one of sft, dpo, kto, reward"):
        method_of("nope")


def test_methods_report_their_own_figures() -> None:
    assert method_of("dpo").report({"eval_rewards/accuracies": 0.75}) == {"preference_accuracy": 0.75}
    assert method_of("reward").report({"eval_accuracy": 0.5}) == {"preference_accuracy": 0.5}
    assert method_of("kto").report({"eval_accuracy": 0.5}) == {} == method_of("sft").report({"eval_loss": 1.0})


@pytest.fixture
def extra_methods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder searched as part of the methods package (a module written there is one of the package's), and
    TrainConfig rebuilt from what is found; everything is put back afterwards."""
    folder = tmp_path / "more_methods"
    folder.mkdir()
    monkeypatch.setattr(methods, "__path__", [*methods.__path__, str(folder)])
    saved = dict(vars(train_config))
    yield folder
    for name in [name for name in list(sys.modules) if name.startswith("llm_feedback_loop.training.methods.")]:
        if Path(getattr(sys.modules[name], "__file__", "") or "").parent == folder:
            del sys.modules[name]
    all_methods.cache_clear()
    vars(train_config).clear()
    vars(train_config).update(saved)


def rebuilt() -> None:
    all_methods.cache_clear()
    importlib.reload(train_config)


def test_a_new_method_module_is_a_method_of_the_config_the_cli_and_the_api(
    extra_methods: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (extra_methods / "echo.py").write_text(ECHO)
    rebuilt()
    assert "echo" in all_methods()

    (tmp_path / "run.yaml").write_text("method: echo\ndata: x.jsonl\necho-rounds: 5\n")  # a YAML key as well
    config = train_config.build_config(train_config.read_yaml(tmp_path / "run.yaml"))
    assert config.echo_rounds == 5 and config.echo_word == "hello"
    assert config.effective_learning_rate == 1e-5
    with pytest.raises(train_config.ConfigError, match="echo_rounds"):
        train_config.build_config({"method": "echo", "data": "x.jsonl", "echo_rounds": 0})
    with pytest.raises(train_config.ConfigError, match="echo_word: must not contain a NUL"):
        train_config.build_config({"method": "echo", "data": "x.jsonl", "echo_word": "a\x00b"})
    schema = train_config.TrainConfig.model_json_schema()  # the API's request body
    assert "echo" in schema["properties"]["method"]["enum"] and "echo_rounds" in schema["properties"]

    signature = inspect.Signature([*cli_train.command_options(), *cli_train.config_options()])
    monkeypatch.setattr(cli_train.train_command, "__signature__", signature)
    app = typer.Typer()
    app.command("train")(cli_train.train_command)
    app.command("other")(lambda: None)  # a group, so `train` is a subcommand as in llmfl
    runner = CliRunner()
    help_text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    assert "--echo-rounds" in help_text and "Echo: how many rounds." in help_text and "echo" in help_text
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["train", "echo", "--data", "missing.jsonl", "--echo-rounds", "2"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1 and "missing.jsonl does not exist" in result.output  # past the method check


def test_a_module_that_is_not_a_method_or_redeclares_a_setting_is_refused(extra_methods: Path) -> None:
    (extra_methods / "helper.py").write_text("VALUE = 1\n")
    all_methods.cache_clear()
    with pytest.raises(TypeError, match="must define METHOD"):
        all_methods()
    (extra_methods / "helper.py").unlink()
    sys.modules.pop("llm_feedback_loop.training.methods.helper", None)
    (extra_methods / "echo.py").write_text(ECHO.replace('"echo_rounds"', '"beta"'))
    all_methods.cache_clear()
    with pytest.raises(TypeError, match="declare the setting 'beta' differently"):
        method_settings()
