"""What the API accepts and returns.

The feedback payloads (`Legacy*`, the original project's; `*Create`, the `/v1` API's) are the feedback store's
(`feedback/payloads.py`), taken as they are; `*Public` are what the `/v1` API returns, and the annotate page's
`AnnotationCreate` is split into those payloads by its route.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_feedback_loop.feedback import validation
from llm_feedback_loop.feedback.payloads import (
    CleanText,
    ComparisonCreate,
    ComparisonResponseIn,
    CorrectionCreate,
    FeedbackCommon,
    FreeJSON,
    GenerationCreate,
    LegacyComparisonIn,
    LegacyRatingIn,
    LegacyResponseIn,
    Message,
    NonEmptyText,
    PromptIn,
    Ranking,
    RatingCreate,
    RowId,
)

__all__ = [  # the feedback store's payloads, which the API accepts as they are
    "CleanText",
    "ComparisonCreate",
    "ComparisonResponseIn",
    "CorrectionCreate",
    "FeedbackCommon",
    "FreeJSON",
    "GenerationCreate",
    "LegacyComparisonIn",
    "LegacyRatingIn",
    "LegacyResponseIn",
    "Message",
    "NonEmptyText",
    "PromptIn",
    "Ranking",
    "RatingCreate",
    "RowId",
]

T = TypeVar("T")


class RowPublic(BaseModel):
    id: int
    created_at: datetime
    updated_at: datetime
    annotator: str | None
    metadata: dict[str, Any] | None
    prompt: str
    messages: list[Message]


class RatingPublic(RowPublic):
    kind: Literal["rating"] = "rating"
    response: str
    rating: Literal["up", "down"]
    model: str | None
    comment: str | None
    generation_id: int | None


class ComparisonPublic(RowPublic):
    kind: Literal["comparison"] = "comparison"
    responses: list[dict[str, Any]]
    ranking: list[int] | None
    best_index: int | None
    model: str | None
    comment: str | None


class CorrectionPublic(RowPublic):
    kind: Literal["correction"] = "correction"
    original_response: str
    corrected_response: str
    model: str | None
    comment: str | None
    generation_id: int | None


class GenerationPublic(RowPublic):
    kind: Literal["generation"] = "generation"
    response: str
    model: str | None
    model_version: str | None
    parameters: dict[str, Any] | None


class Created(BaseModel):
    message: str
    id: int


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class AnnotationAnswer(BaseModel):
    """One answer as the annotator judged it: its text (or logged generation), a thumbs, an edit."""

    model_config = ConfigDict(extra="forbid")

    text: CleanText | None = Field(default=None, description="Taken from the generation when omitted.")
    generation_id: RowId | None = None
    rating: Literal["up", "down"] | None = None
    corrected: CleanText | None = Field(default=None, description="The annotator's better version of it.")

    @model_validator(mode="after")
    def check_text(self) -> AnnotationAnswer:
        validation.check_answer_or_generation(self.text, self.generation_id, "text")
        return self


class AnnotationCreate(PromptIn):
    """Everything one annotator said about the answers to one prompt, stored together or not at all:
    the ranking (a comparison), each thumbs (a rating) and each edit (a correction)."""

    model_config = ConfigDict(extra="forbid")

    annotator: NonEmptyText | None = Field(
        default=None, max_length=200, description="Defaults to the signed-in user (others may not be named)."
    )
    answers: list[AnnotationAnswer] = Field(
        min_length=1, max_length=validation.MAX_ANSWERS, description="At most MAX_ANSWERS_PER_COMPARISON."
    )
    ranking: Ranking | None = Field(default=None, description="Indices into answers, best first.")
    comment: CleanText | None = None
    metadata: FreeJSON | None = None
    task_id: RowId | None = Field(default=None, description="The queue task these answers belong to.")

    @model_validator(mode="after")
    def check_annotation(self) -> AnnotationCreate:
        if self.ranking is not None:
            if len(self.answers) < 2:
                raise ValueError("ranking needs at least 2 answers")
            validation.check_comparison([str(i) for i in range(len(self.answers))], self.ranking, None)
        judged = self.ranking is not None or any(a.rating or (a.corrected or "").strip() for a in self.answers)
        if not judged:
            raise ValueError("nothing to store: rank the answers, rate one, or correct one")
        return self
