"""What an export produces: the dataset kind, row format, pair strategy, split and caps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from llm_feedback_loop.training_data.kinds import KIND_NAMES, DatasetKind

DATASET_KINDS: tuple[str, ...] = KIND_NAMES
PairStrategy = Literal["all-pairs", "best-vs-rest", "best-vs-random-lower", "best-vs-worst"]
PAIR_STRATEGIES: tuple[PairStrategy, ...] = ("all-pairs", "best-vs-rest", "best-vs-random-lower", "best-vs-worst")
RowFormat = Literal["standard", "conversational"]
PAIR_KINDS = ("dpo", "reward")  # the kinds whose rows are (prompt, chosen, rejected)
DEFAULT_MAX_PAIRS_PER_PROMPT = 64  # MAX_PAIRS_PER_PROMPT's default (settings.py)


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What an export produces. Filters (time range, annotator, model) select the rows read.

    `max_pairs_per_prompt`: most preference pairs (dpo, reward) one prompt gives, since a ranking of n answers
    gives n(n-1)/2; the entry points pass the MAX_PAIRS_PER_PROMPT setting. None: its default,
    DEFAULT_MAX_PAIRS_PER_PROMPT.

    `exact_split`: `test_size` of the prompts that give rows is held out exactly (rounded, at least one), not
    about that share by each prompt's hash alone; the feedback is read twice (for small exports: a loop round's).

    `repetition_pairs` (dpo, reward): each prompt of the training side whose first pair's chosen answer is a
    list gets one more pair, that answer preferred to itself repeated (`repetition.py`); the test side keeps the
    annotators' pairs only.
    """

    kind: DatasetKind
    format: RowFormat = "standard"
    strategy: PairStrategy = "all-pairs"
    dedupe: bool = True
    sft_include_comparisons: bool = False
    test_size: float = 0.0
    seed: int = 0
    max_pairs_per_prompt: int | None = None
    exact_split: bool = False
    repetition_pairs: bool = False

    def __post_init__(self) -> None:
        if self.kind not in DATASET_KINDS:
            raise ValueError(f"unknown dataset kind {self.kind!r}; choose one of {', '.join(DATASET_KINDS)}")
        if self.strategy not in PAIR_STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(PAIR_STRATEGIES)}")
        if self.format not in ("standard", "conversational"):
            raise ValueError(f"unknown format {self.format!r}; choose standard or conversational")
        if not 0.0 <= self.test_size < 1.0:
            raise ValueError(f"test_size must be in [0, 1), got {self.test_size}")
        if self.repetition_pairs and self.kind not in PAIR_KINDS:
            raise ValueError(f"repetition pairs are preference pairs: {' or '.join(PAIR_KINDS)} only, not {self.kind}")
        if self.max_pairs_per_prompt is not None and self.max_pairs_per_prompt < 1:
            raise ValueError(f"max_pairs_per_prompt must be at least 1, got {self.max_pairs_per_prompt}")

    @property
    def pair_cap(self) -> int:
        """The pairs-per-prompt cap in force (the default where none was resolved)."""
        return self.max_pairs_per_prompt if self.max_pairs_per_prompt is not None else DEFAULT_MAX_PAIRS_PER_PROMPT

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "format": self.format,
            "strategy": self.strategy,
            "dedupe": self.dedupe,
            "sft_include_comparisons": self.sft_include_comparisons,
            "test_size": self.test_size,
            "seed": self.seed,
            "max_pairs_per_prompt": self.pair_cap,
            **({"exact_split": True} if self.exact_split else {}),
            **({"repetition_pairs": True} if self.repetition_pairs else {}),
        }
