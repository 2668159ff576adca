"""What every stage of a loop is given: the loop's settings (`LoopSettings`: what it optimises, how it
collects, trains and decides) and a `LoopRun` (those settings, the client of the service, the database, and
where progress is said). The stages (`collect`, `evaluate`, `train`, `rounds`) are functions of a LoopRun."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.objectives.base import Objective, Scorer
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.database import RunOnDatabase, in_session
from llm_feedback_loop.storage.tables import ModelVersion

T = TypeVar("T")

# Each trains on the round's export of its dataset kind. `reward` trains a reward model on all feedback so far,
# which the online method after it (grpo, rloo) is rewarded by: --train reward,grpo.
METHODS = ("sft", "dpo", "kto", "reward", "grpo", "rloo")
ONLINE = ("grpo", "rloo")


@dataclass(frozen=True)
class Sampling:
    n: int = 4
    max_tokens: int = 64
    temperature: float = 0.8
    top_p: float = 0.95
    # Unseeded by default; a seed makes the answers reproducible (the service batches seeded requests too).
    seed: int | None = None


class LoopError(RuntimeError):
    """A round could not go on; the message says why (it is recorded in the round's row)."""


class NoTrainingData(LoopError):
    """The round's feedback gives nothing to train on (every answer judged alike): the round ends without
    a candidate and the loop goes on with the next."""


@dataclass
class LoopSettings:
    name: str
    objective: Objective
    folder: Path
    rounds: int = 2
    prompts_per_round: int = 64
    sampling: Sampling = field(default_factory=Sampling)
    methods: list[str] = field(default_factory=lambda: ["dpo"])
    strategy: str = "best-vs-worst"
    pairs_per_prompt: int = 2  # most DPO pairs one prompt gives a round's export (the clearest ones)
    # a round whose answers were judged differently on fewer prompts than this collects more (a simulated
    # annotator), then trains nothing: its feedback waits for the next round. None: `signal_needed`'s default
    min_signal: int | None = None
    train_options: list[str] = field(default_factory=list)  # more `llmfl train` options, e.g. --config FILE
    annotator: str = "simulated"  # or "people"
    scorer: Scorer | None = None  # the simulated annotator's score (default: the objective's preference)
    # "shuffled": a control run; the simulated annotator's judgements are shuffled among each prompt's answers,
    # so the round trains on as many pairs as a real one but they say nothing (a gain then is luck or drift)
    control: str | None = None
    people_timeout_s: float = 3600.0
    min_win_rate: float = 0.55
    max_drop: float = 5.0
    min_gain: float = 0.0  # points the lower end of the task score's gain interval must be above
    eval_max_tokens: int = 64
    # sampled answers per held-out prompt beside the greedy one (at the sampling's temperature and top-p); the
    # promotion rule asks their gain and coherence too. 0: greedy answers only
    eval_samples: int = 2
    # each prompt of a DPO export's training side whose liked answer is a list gets one more pair: that list
    # over itself repeated (`training_data/repetition.py`), against the greedy loops DPO makes likelier
    repetition_pairs: bool = True

    @property
    def signal_needed(self) -> int:
        """Prompts with answers judged differently a round needs to train: min_signal, else a quarter of the
        round's prompts, at most 16."""
        return self.min_signal if self.min_signal is not None else max(1, min(16, self.prompts_per_round // 4))

    @property
    def signal_wanted(self) -> int:
        """Prompts with answers judged differently below which a simulated annotator's round collects once more
        before training: half the round's prompts, at most 32, and never fewer than `signal_needed`. A round
        that found 22 such prompts trains on about 30 pairs, whose few held-out pairs cannot tell a real
        lesson from chance."""
        return max(self.signal_needed, min(32, self.prompts_per_round // 2))

    @property
    def annotator_name(self) -> str:
        return f"simulated:{self.name}"

    @property
    def data_path(self) -> str:
        """How the loop's evaluations are named among a version's evaluations."""
        return f"task:{self.objective.name}"


@dataclass
class LoopRun:
    """One run of a loop: its settings, the service's client, the database, where progress is said, and the
    Settings of the entry point that started it (the `llmfl train` processes it starts are given them, and
    its exports their MAX_PAIRS_PER_PROMPT)."""

    settings: LoopSettings
    client: httpx.Client
    database: RunOnDatabase
    say: Callable[[str], None]
    app_settings: Settings

    def session(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return in_session(self.database, work)

    def active(self) -> ModelVersion:
        from llm_feedback_loop.models.registry import active_version

        version = self.session(active_version)
        if version is None:
            raise LoopError("no active model version: the service registers one when it first answers a chat")
        return version

    def version(self, version_id: int) -> ModelVersion:
        version = self.session(lambda s: s.get(ModelVersion, version_id))
        assert version is not None
        return version
