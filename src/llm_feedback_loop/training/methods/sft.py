"""Supervised fine-tuning on approved and corrected answers (TRL's SFTTrainer).

Loss only on the answer tokens (`completion_only_loss`), never on the prompt or on padding; batches are
padded to their longest example, not to a fixed length.
"""

from __future__ import annotations

from typing import Any

from llm_feedback_loop.training.methods.base import (
    LearningRates,
    TrainingJob,
    TrainingMethod,
    shared_arguments,
    trainer_inputs,
)


class SFT(TrainingMethod):
    name = "sft"
    summary = "supervised fine-tuning on approved and corrected answers"
    kind = "sft"
    learning_rates = LearningRates(full=5e-5, lora=2e-4)
    order = 0

    def build_trainer(self, job: TrainingJob) -> Any:
        from trl import SFTConfig, SFTTrainer

        args = SFTConfig(
            **shared_arguments(job),
            max_length=job.config.max_length,
            completion_only_loss=True,
            packing=False,
        )
        return SFTTrainer(**trainer_inputs(job, args))


METHOD = SFT()
