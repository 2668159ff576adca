"""The loop's check of a candidate on early stopping's held-out pairs, on fixed training metrics: better than
chance goes on to the evaluation; chance, or the weights before training, ends the round without one."""

from __future__ import annotations

import pytest

from llm_feedback_loop.loop.context import NoTrainingData
from llm_feedback_loop.loop.train import HELD_OUT_CHANCE, check_held_out, early_stopping_share
from llm_feedback_loop.training.recipes import RECIPES


def test_a_candidate_that_ranks_its_held_out_pairs_better_than_chance_goes_on() -> None:
    said = check_held_out("dpo", {"best_step": 12, "preference_accuracy": 1.0}, pairs=7)
    assert said == "dpo at step 12 ranks 7 of 7 held-out pairs as the annotator did (chance p = 0.01)"


@pytest.mark.parametrize(
    ("metrics", "pairs", "why"),
    [
        ({"best_step": 12, "preference_accuracy": 0.3333}, 9, "ranks 3 of 9 held-out pairs"),  # a shuffled control
        ({"best_step": 8, "preference_accuracy": 0.8333}, 6, "(chance p = 0.11)"),  # 5 of 6: luck one time in 9
    ],
)
def test_a_candidate_no_better_than_chance_ends_the_round(metrics: dict, pairs: int, why: str) -> None:
    with pytest.raises(NoTrainingData, match="no better than a model that learnt nothing") as refused:
        check_held_out("dpo", metrics, pairs)
    assert why in str(refused.value) and f"p > {HELD_OUT_CHANCE}" in str(refused.value)
    assert "the feedback is kept for the next round" in str(refused.value)


def test_a_run_that_kept_its_weights_before_training_ends_the_round() -> None:
    metrics = {"best_step": 0, "preference_accuracy": 0.0, "eval_losses": [[0, 0.6931], [4, 0.714], [8, 0.754]]}
    with pytest.raises(NoTrainingData, match=r"never lowered its 6 held-out pairs' loss \(0.693 → 0.714 → 0.754\)"):
        check_held_out("dpo", metrics, 6)


def test_too_few_held_out_pairs_to_tell_from_chance_are_not_checked() -> None:
    said = check_held_out("dpo", {"best_step": 4, "preference_accuracy": 0.5}, pairs=2)
    assert said.endswith("ranks 1 of 2 held-out pairs as the annotator did (chance p = 0.75): too few to tell from "
                         "chance, not checked")  # fmt: skip
    with pytest.raises(NoTrainingData, match="never lowered"):  # the weights before training: nothing to evaluate
        check_held_out("dpo", {"best_step": 0, "preference_accuracy": 0.0}, pairs=2)


def test_without_early_stopping_there_is_nothing_to_check() -> None:
    assert check_held_out("dpo", {"preference_accuracy": 0.2}, pairs=9) == ""  # evaluated at the end only
    assert check_held_out("dpo", {"best_step": 4}, pairs=0) == ""
    assert check_held_out("sft", {"global_step": 4}, pairs=0) == ""


def test_the_held_out_share_follows_the_recipe_and_the_loops_training_settings(tmp_path) -> None:
    assert early_stopping_share("dpo", []) == RECIPES["dpo"].held_out == 0.2
    assert early_stopping_share("sft", []) == 0.0  # no recipe: no early stopping
    own = tmp_path / "train.yaml"
    own.write_text("learning_rate: 1.0e-5\n")
    assert early_stopping_share("dpo", ["--config", str(own)]) == 0.2
    for off in ("eval_steps: 0\n", "evaluate: false\n"):
        own.write_text(off)
        assert early_stopping_share("dpo", ["--config", str(own)]) == 0.0
