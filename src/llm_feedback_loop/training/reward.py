"""A reward model from chosen/rejected pairs (TRL's RewardTrainer): the base model with a one-output
scoring head (`AutoModelForSequenceClassification(num_labels=1)`), trained so chosen scores above rejected.
"""

from __future__ import annotations

from typing import Any

from trl import RewardConfig, RewardTrainer

from llm_feedback_loop.training.job import TrainingJob, shared_arguments, trainer_inputs


def build_trainer(job: TrainingJob) -> Any:
    args = RewardConfig(**shared_arguments(job), max_length=job.config.max_length)
    return RewardTrainer(**trainer_inputs(job, args))
