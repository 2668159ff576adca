"""Supervised fine-tuning on approved and corrected answers (TRL's SFTTrainer).

Loss only on the answer tokens (`completion_only_loss`), never on the prompt or on padding; batches are
padded to their longest example, not to a fixed length.
"""

from __future__ import annotations

from typing import Any

from trl import SFTConfig, SFTTrainer

from llm_feedback_loop.training.job import TrainingJob, shared_arguments, trainer_inputs


def build_trainer(job: TrainingJob) -> Any:
    args = SFTConfig(
        **shared_arguments(job),
        max_length=job.config.max_length,
        completion_only_loss=True,
        packing=False,
    )
    return SFTTrainer(**trainer_inputs(job, args))
