"""Plain records of stored feedback, grouped by prompt, as the feedback store yields them to the exports."""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_feedback_loop.storage.prompts import Message


@dataclass(slots=True)
class RatingRecord:
    id: int
    response: str
    rating: str  # "up" | "down"


@dataclass(slots=True)
class ComparisonRecord:
    id: int
    responses: list[str]
    ranking: list[int] | None
    best_index: int | None


@dataclass(slots=True)
class CorrectionRecord:
    id: int
    original: str
    corrected: str


@dataclass(slots=True)
class PromptGroup:
    """All feedback on one conversation (one prompt_hash), oldest first within each kind."""

    prompt_hash: str
    prompt: str
    prompt_messages: list[Message]
    ratings: list[RatingRecord] = field(default_factory=list)
    comparisons: list[ComparisonRecord] = field(default_factory=list)
    corrections: list[CorrectionRecord] = field(default_factory=list)
    generations: list[int] = field(default_factory=list)  # ids of answers logged for it (when asked for)
