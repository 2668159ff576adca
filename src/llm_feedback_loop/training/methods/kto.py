"""KTO on thumbs up/down (TRL's KTOTrainer): each answer labelled desirable or not, no pairs needed.

Up and down votes are rarely balanced: the desirable weight is set so that both sides weigh the same in
the loss (KTO paper, section 4), unless the config says otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from llm_feedback_loop.training.methods.base import (
    BETA,
    LearningRates,
    Setting,
    TrainingJob,
    TrainingMethod,
    shared_arguments,
    trainer_inputs,
)

if TYPE_CHECKING:
    from llm_feedback_loop.training.config import TrainConfig


def balanced_weights(labels: list[bool]) -> tuple[float, float]:
    """(desirable_weight, undesirable_weight) making desirable × count ≈ undesirable × count."""
    desirable = sum(1 for label in labels if label)
    undesirable = len(labels) - desirable
    if desirable == 0 or undesirable == 0:
        return 1.0, 1.0
    return round(undesirable / desirable, 4), 1.0


class KTO(TrainingMethod):
    name = "kto"
    summary = "KTO on thumbs up/down"
    kind = "kto"
    learning_rates = LearningRates(full=5e-6, lora=5e-5)
    order = 2
    settings: ClassVar[dict[str, Setting]] = {"beta": BETA}
    examples_per_pass = 2  # its KL term compares each answer with the others in its forward pass

    def check(self, config: TrainConfig) -> None:
        if config.batch_size < 2 or (config.micro_batch_size or 2) < 2:
            raise ValueError("KTO compares each answer with others in its batch: batch_size and micro_batch_size >= 2")

    def check_data(self, rows: list[dict[str, Any]]) -> str | None:
        if len({row["label"] for row in rows}) < 2:
            return (
                "KTO needs both desirable (label true) and undesirable (label false) examples; "
                f"every row is {rows[0]['label']}"
            )
        return None

    def build_trainer(self, job: TrainingJob) -> Any:
        from trl import KTOConfig, KTOTrainer

        desirable_weight, undesirable_weight = balanced_weights(list(job.train_dataset["label"]))
        args = KTOConfig(
            **shared_arguments(job),
            beta=job.config.beta,
            max_length=job.config.max_length,
            desirable_weight=desirable_weight,
            undesirable_weight=undesirable_weight,
            precompute_ref_log_probs=True,  # once before training, as DPO's (training/methods/dpo.py)
        )
        return KTOTrainer(ref_model=None, **trainer_inputs(job, args))


METHOD = KTO()
