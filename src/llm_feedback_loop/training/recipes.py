"""The small-data recipe: how `llmfl train dpo` trains on a few hundred pairs unless the run says otherwise,
and so how every round of `llmfl loop` (and `llmfl demo`) trains.

A round of feedback gives tens to a few hundred pairs. Full fine-tuning at the method's default rate learns
from them but costs more per step, and a LoRA adapter on every layer at its default rate barely moves. What
moved a style preference in one round on SmolLM2-135M-Instruct: a LoRA adapter (rank 16, alpha 32) on the top
40% of the layers, about three passes over the pairs but at least 10 and at most 20 steps of 8 (38 steps on 145
pairs drove a candidate to degenerate answers), learning rate 3e-4 with beta 0.5. The higher beta makes DPO's
first steps larger (beta/2 times the log-ratio's gradient) and its loss saturate at a smaller margin. On the same
exports (bench/bench_recipes.py) it doubled `plain`'s sampled gain over lr 2e-4 with beta 0.1, the recipe before
it (+15.5 -> +34.5 points), at the same greedy coherence; one round of each built-in task with it
(bench/bench_tasks.py) gained +21 to +55 points in 7.5 to 10.2 CPU-minutes, with `concise`'s shuffled control
gaining +40 as well (README: the loop).

The recipe also evaluates the held-out pairs before the first step and every 4 steps and keeps the best weights
(early stopping: `eval_steps`, where the data has a test split). A loop round holds out `held_out` of its
prompts for it, and refuses a candidate that ranks them no better than chance (loop/train.py): on `concise` a
shuffled control's pairs, which say nothing, still shortened the answers, and the task counted it as a gain.

The rows that set a run's length are those from feedback: an export's repetition pairs (one per training
prompt whose liked answer is a list, `training_data/repetition.py`) are trained on but not counted. Counted
(when every answer got one), they lengthened `concise`'s rounds from 13 to 20 steps, and the longer run lost 3
of 42 greedy answers' coherence (bench_recipes.py).

A setting the run chooses (in its YAML file or flags) is kept: `--no-lora`, or a `learning_rate` without
`--lora`, keeps full fine-tuning at that rate and the method's beta; `--lora` alone takes the recipe's adapter,
rate and beta; a `lora_target_modules` pattern keeps its layers; `epochs` or `max_steps` keep their length.
The run's log says why it trains without the adapter (`without_adapter`): 1.5e-4 without `--lora` took
`concise`'s greedy task score and coherence to 0 on one round's export, the same rate with it gained +14.3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_feedback_loop.training.config import TrainConfig

SMALL_DATA_ROWS = 1000  # a training set of at most this many rows is small data

# The recipe's adapter and what goes with it: dropped when the run trains every weight (its own rate, the
# method's beta).
ADAPTER_SETTINGS = ("lora", "lora_top_layers", "lora_r", "lora_alpha", "learning_rate", "beta")


@dataclass(frozen=True)
class Recipe:
    settings: dict[str, Any] = field(default_factory=dict)
    passes: float = 3.0  # passes over the rows...
    min_steps: int = 10  # ...but at least this many optimizer steps...
    max_steps: int = 20  # ...and at most this many
    held_out: float = 0.0  # the share of a loop round's prompts kept back for early stopping (`eval_steps`)

    def steps(self, rows: int, batch_size: int) -> int:
        return min(self.max_steps, max(self.min_steps, math.ceil(self.passes * rows / batch_size)))


RECIPES: dict[str, Recipe] = {
    "dpo": Recipe(
        {
            "lora": True,
            "lora_top_layers": 0.4,
            "lora_r": 16,
            "lora_alpha": 32,
            "learning_rate": 3e-4,
            "beta": 0.5,
            "eval_steps": 4,
        },
        held_out=0.2,
    ),
}


def small_data_settings(config: TrainConfig, rows: int) -> dict[str, Any]:
    """The recipe's settings for a run of `config` on `rows` training rows, less those the run chose itself;
    empty when the data is not small or the method has no recipe."""
    recipe = RECIPES.get(config.method)
    if recipe is None or rows > SMALL_DATA_ROWS:
        return {}
    chosen = config.model_fields_set
    settings = {key: value for key, value in recipe.settings.items() if key not in chosen}
    if without_adapter(config) is not None:
        settings = {key: value for key, value in settings.items() if key not in ADAPTER_SETTINGS}
    if "lora_target_modules" in chosen:  # the run's pattern names its layers
        settings.pop("lora_top_layers", None)
    if not chosen & {"epochs", "max_steps"}:
        settings["max_steps"] = recipe.steps(rows, config.batch_size)
    return settings


def without_adapter(config: TrainConfig) -> str | None:
    """Why a run of `config` trains every weight instead of the recipe's adapter, for the run's log: full
    fine-tuning chosen, or a learning rate chosen without LoRA (a rate for the method's own training, which the
    run keeps); None when the run left the choice to the recipe."""
    chosen = config.model_fields_set
    if "lora" in chosen and not config.lora:
        return "full fine-tuning chosen (--no-lora): no adapter"
    if "learning_rate" in chosen and "lora" not in chosen:
        return (
            f"learning_rate {config.learning_rate} chosen without --lora: full fine-tuning at that rate, no adapter "
            "(--lora keeps the recipe's adapter at that rate)"
        )
    return None


def with_small_data_recipe(config: TrainConfig, rows: int) -> tuple[TrainConfig, dict[str, Any]]:
    """`config` with the small-data recipe applied where the run left the choice to it; returns the new
    config and what the recipe set (empty: the config unchanged)."""
    from llm_feedback_loop.training.config import build_config

    settings = small_data_settings(config, rows)
    if not settings:
        return config, {}
    return build_config(config.model_dump(), settings), settings


def describe(settings: dict[str, Any]) -> str:
    """What the recipe set, for the run's log: `lora, lora_top_layers 0.4, ..., beta 0.5, max_steps 20`."""
    return ", ".join(key if value is True else f"{key} {value}" for key, value in settings.items())
