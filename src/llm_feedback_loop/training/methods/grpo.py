"""Group relative policy optimisation (TRL's GRPOTrainer): the original project's planned PPO, as TRL does
online RL from a reward today. Each prompt's sampled answers are compared with each other (their rewards
normalised within the group), so no value model is needed. Shared with RLOO: methods/_online.py.
"""

from __future__ import annotations

from typing import Any

from llm_feedback_loop.training.methods._online import OnlineMethod


class GRPO(OnlineMethod):
    name = "grpo"
    summary = "online RL: sampled answers scored by a reward, compared within each prompt"
    order = 4

    def trainer_classes(self) -> tuple[Any, Any]:
        from trl import GRPOConfig, GRPOTrainer

        return GRPOConfig, GRPOTrainer


METHOD = GRPO()
