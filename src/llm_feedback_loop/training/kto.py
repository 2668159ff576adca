"""KTO on thumbs up/down (TRL's KTOTrainer): each answer labelled desirable or not, no pairs needed.

Up and down votes are rarely balanced: the desirable weight is set so that both sides weigh the same in
the loss (KTO paper, section 4), unless the config says otherwise.
"""

from __future__ import annotations

from typing import Any

from trl import KTOConfig, KTOTrainer

from llm_feedback_loop.training.job import TrainingJob, shared_arguments, trainer_inputs


def balanced_weights(labels: list[bool]) -> tuple[float, float]:
    """(desirable_weight, undesirable_weight) making desirable × count ≈ undesirable × count."""
    desirable = sum(1 for label in labels if label)
    undesirable = len(labels) - desirable
    if desirable == 0 or undesirable == 0:
        return 1.0, 1.0
    return round(undesirable / desirable, 4), 1.0


def build_trainer(job: TrainingJob) -> Any:
    desirable_weight, undesirable_weight = balanced_weights(list(job.train_dataset["label"]))
    args = KTOConfig(
        **shared_arguments(job),
        beta=job.config.beta,
        max_length=job.config.max_length,
        desirable_weight=desirable_weight,
        undesirable_weight=undesirable_weight,
        precompute_ref_log_probs=job.peft_config is None,
    )
    return KTOTrainer(ref_model=None, **trainer_inputs(job, args))
