"""Early stopping on the held-out split (`--eval-steps`): the callback on fixed losses keeps the best
evaluation's weights (the start's included) and stops after `patience` evaluations without a lower loss; a DPO
run on the tiny model evaluates before its first step and records what it kept."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch

from llm_feedback_loop.training.callbacks import KeepBest
from llm_feedback_loop.training.methods.base import whole_batches
from tests.training.conftest import invoke, write_export


def evaluate(keeper: KeepBest, model: torch.nn.Module, step: int, loss: float, max_steps: int = 10) -> bool:
    """One evaluation at `step` with `model`'s weights set to `step`; whether training was told to stop."""
    with torch.no_grad():
        model.weight.fill_(step)
    control = SimpleNamespace(should_training_stop=False)
    state = SimpleNamespace(global_step=step, max_steps=max_steps)
    keeper.on_evaluate(None, state, control, metrics={"eval_loss": loss}, model=model)
    return control.should_training_stop


def test_the_best_evaluations_weights_are_kept_and_training_stops_after_patience() -> None:
    model, keeper = torch.nn.Linear(2, 1, bias=False), KeepBest(patience=2)
    assert not evaluate(keeper, model, 0, 0.693)
    assert not evaluate(keeper, model, 2, 0.61)
    assert not evaluate(keeper, model, 4, 0.64)  # one evaluation without a lower loss
    assert evaluate(keeper, model, 6, 0.62)  # two: stop
    keeper.on_train_end(None, SimpleNamespace(global_step=6), None, model=model)
    assert torch.all(model.weight == 2)  # step 2's weights put back
    assert keeper.summary() == {
        "best_step": 2,
        "best_eval_loss": 0.61,
        "eval_losses": [[0, 0.693], [2, 0.61], [4, 0.64], [6, 0.62]],
        "stopped_early_at": 6,
    }


def test_a_run_that_never_beats_its_start_ends_with_the_start_weights() -> None:
    model, keeper = torch.nn.Linear(2, 1, bias=False), KeepBest(patience=3)
    for step, loss in [(0, 0.693), (2, 0.70), (4, 0.72)]:
        assert not evaluate(keeper, model, step, loss, max_steps=4)  # the last step: nothing to stop
    keeper.on_train_end(None, SimpleNamespace(global_step=4), None, model=model)
    assert torch.all(model.weight == 0)
    assert keeper.summary()["best_step"] == 0 and "stopped_early_at" not in keeper.summary()


def test_frozen_weights_are_not_copied_and_a_loss_that_is_not_finite_is_ignored() -> None:
    model, keeper = torch.nn.Linear(2, 1), KeepBest(patience=1)
    model.bias.requires_grad_(False)
    evaluate(keeper, model, 0, 0.5)
    assert set(keeper._kept or {}) == {"weight"}
    assert not evaluate(keeper, model, 2, float("nan"))
    assert keeper.summary()["eval_losses"] == [[0, 0.5]]


def test_a_dpo_run_with_eval_steps_evaluates_from_the_start(training_database: str, tmp_path: Path) -> None:
    data = write_export(tmp_path / "exports", "dpo", count=16, test=9)
    out = tmp_path / "dpo"
    flags = ("--max-steps", "6", "--batch-size", "4", "--learning-rate", "5e-3", "--device", "cpu")
    code, output = invoke("train", "dpo", "--data", str(data), "--output-dir", str(out), "--eval-steps", "2", *flags)
    assert code == 0, output
    code, shown = invoke("runs", "show", "1")
    metrics = json.loads(shown)["metrics"]
    steps = [step for step, _ in metrics["eval_losses"]]
    assert steps[0] == 0 and steps == sorted(steps) and set(steps) <= {0, 2, 4, 6}
    assert abs(metrics["eval_losses"][0][1] - 0.6931) < 1e-3  # before any step the policy is its reference
    assert abs(metrics["best_eval_loss"] - min(loss for _, loss in metrics["eval_losses"])) < 1e-4
    assert abs(metrics["eval_loss"] - metrics["best_eval_loss"]) < 1e-4  # the saved weights are the kept ones
    right = metrics["preference_accuracy"] * 9  # a share of the 9 pairs, not a mean of unequal batches' shares
    assert abs(right - round(right)) < 1e-6


def test_held_out_batches_are_all_one_size() -> None:
    assert [whole_batches(rows, 32) for rows in (9, 7, 64, 40, 37, 1, 0)] == [9, 7, 32, 20, 1, 1, 1]
