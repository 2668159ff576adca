"""Direct preference optimisation on chosen/rejected pairs (TRL's DPOTrainer).

One model in memory: with LoRA the reference is the base with the adapter disabled; with full
fine-tuning the reference log-probabilities are computed once before training.
"""

from __future__ import annotations

from typing import Any

from trl import DPOConfig, DPOTrainer

from llm_feedback_loop.training.job import TrainingJob, shared_arguments, trainer_inputs


def build_trainer(job: TrainingJob) -> Any:
    losses: dict[str, Any] = {}
    if job.config.sft_weight > 0:  # preference loss plus language modelling on the chosen answers
        losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, job.config.sft_weight]}
    args = DPOConfig(
        **shared_arguments(job),
        beta=job.config.beta,
        max_length=job.config.max_length,
        precompute_ref_log_probs=job.peft_config is None,
        **losses,
    )
    return DPOTrainer(ref_model=None, **trainer_inputs(job, args))
