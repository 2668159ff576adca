"""Supervised fine-tuning on approved and corrected answers (TRL's SFTTrainer).

Loss only on the answer tokens (`completion_only_loss`), never on the prompt or on padding; batches are
padded to their longest example, not to a fixed length.
"""

from __future__ import annotations

from typing import Any

from trl import SFTConfig, SFTTrainer

from llm_feedback_loop.training.job import TrainingJob, shared_arguments


def build_trainer(job: TrainingJob) -> Any:
    args = SFTConfig(
        **shared_arguments(job),
        max_length=job.config.max_length,
        completion_only_loss=True,
        packing=False,
    )
    return SFTTrainer(
        model=job.model,
        args=args,
        train_dataset=job.train_dataset,
        eval_dataset=job.eval_dataset,
        processing_class=job.tokenizer,
        peft_config=job.peft_config,
        callbacks=job.callbacks,
    )
