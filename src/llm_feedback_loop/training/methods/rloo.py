"""REINFORCE leave-one-out (TRL's RLOOTrainer): each sampled answer's reward against the mean of the other
answers to its prompt. Shared with GRPO: methods/_online.py.
"""

from __future__ import annotations

from typing import Any

from llm_feedback_loop.training.methods._online import OnlineMethod


class RLOO(OnlineMethod):
    name = "rloo"
    summary = "online RL: each sampled answer's reward against the others' to the same prompt"
    order = 5

    def trainer_classes(self) -> tuple[Any, Any]:
        from trl import RLOOConfig, RLOOTrainer

        return RLOOConfig, RLOOTrainer


METHOD = RLOO()
