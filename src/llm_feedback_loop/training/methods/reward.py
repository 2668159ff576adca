"""A reward model from chosen/rejected pairs (TRL's RewardTrainer): the base model with a one-output
scoring head (`AutoModelForSequenceClassification(num_labels=1)`), trained so chosen scores above rejected.
"""

from __future__ import annotations

from typing import Any

from llm_feedback_loop.training.methods.base import (
    SCORE,
    LearningRates,
    TrainingJob,
    TrainingMethod,
    shared_arguments,
    trainer_inputs,
)


class Reward(TrainingMethod):
    name = "reward"
    summary = "a reward model (a scoring head) from chosen/rejected pairs"
    kind = "reward"
    learning_rates = LearningRates(full=5e-5, lora=2e-4)
    head = SCORE
    order = 3

    def build_trainer(self, job: TrainingJob) -> Any:
        from trl import RewardConfig, RewardTrainer

        args = RewardConfig(**shared_arguments(job), max_length=job.config.max_length)
        return RewardTrainer(**trainer_inputs(job, args))

    def report(self, metrics: dict[str, Any]) -> dict[str, Any]:
        if "eval_accuracy" in metrics:  # chosen scored above rejected
            return {"preference_accuracy": metrics["eval_accuracy"]}
        return {}


METHOD = Reward()
