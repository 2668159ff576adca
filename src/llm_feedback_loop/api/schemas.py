"""What the API accepts and returns.

`Legacy*` models are the original project's payloads (camelCase `bestIndex`), kept compatible.
`*Create` / `*Public` are the `/v1` API's. Both validate the same way (`validation.py`), so a bad
payload is refused with a message naming the field, and nothing is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from llm_feedback_loop.api import validation

NonEmptyText = Annotated[str, AfterValidator(validation.non_empty_text)]
CleanText = Annotated[str, AfterValidator(validation.no_nul)]
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]  # an id a database can hold
# Free-form JSON (metadata, parameters): finite numbers, 64-bit integers, no NUL, nested at most 32 deep, 64 KiB.
FreeJSON = Annotated[dict[str, Any], AfterValidator(validation.free_json)]
Ranking = Annotated[list[int], Field(max_length=validation.MAX_ANSWERS)]
T = TypeVar("T")


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: CleanText


class LegacyRatingIn(BaseModel):
    """`POST /feedback`, as the original took it."""

    prompt: NonEmptyText
    response: NonEmptyText
    rating: Literal["up", "down"]
    model: CleanText | None = None
    annotator: CleanText | None = Field(default=None, max_length=200)
    comment: CleanText | None = None
    metadata: FreeJSON | None = None


class LegacyResponseIn(BaseModel):
    id: CleanText | int | None = None
    text: NonEmptyText


class LegacyComparisonIn(BaseModel):
    """`POST /rlhf-feedback`, as the original took it."""

    prompt: NonEmptyText
    responses: Annotated[list[LegacyResponseIn], Field(max_length=validation.MAX_ANSWERS)]
    ranking: Ranking | None = None
    bestIndex: int | None = None
    comment: CleanText | None = None
    model: CleanText | None = None
    annotator: CleanText | None = Field(default=None, max_length=200)
    metadata: FreeJSON | None = None

    @model_validator(mode="after")
    def check_ranking(self) -> LegacyComparisonIn:
        validation.check_comparison(
            [r.id for r in self.responses], self.ranking, self.bestIndex, best_index_field="bestIndex"
        )
        return self


class PromptIn(BaseModel):
    """A prompt as text, or a conversation (messages ending with a user turn)."""

    prompt: CleanText | None = None
    messages: list[Message] | None = None

    @model_validator(mode="after")
    def check_prompt(self) -> PromptIn:
        validation.check_prompt(self.prompt, self.messages)
        return self

    def prompt_messages(self) -> list[dict[str, str]]:
        if self.messages:
            return [m.model_dump() for m in self.messages]
        assert self.prompt is not None
        return [{"role": "user", "content": self.prompt}]

    def prompt_text(self) -> str:
        return self.prompt_messages()[-1]["content"]


class FeedbackCommon(BaseModel):
    annotator: CleanText | None = Field(default=None, max_length=200)
    model: CleanText | None = Field(default=None, max_length=300)
    comment: CleanText | None = None
    metadata: FreeJSON | None = None


class RatingCreate(PromptIn, FeedbackCommon):
    model_config = ConfigDict(extra="forbid")

    response: CleanText | None = Field(
        default=None, description="The answer rated; taken from the generation when omitted."
    )
    rating: Literal["up", "down"]
    generation_id: RowId | None = None

    @model_validator(mode="after")
    def check_response(self) -> RatingCreate:
        validation.check_answer_or_generation(self.response, self.generation_id, "response")
        return self


class ComparisonResponseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: CleanText | int | None = None
    text: CleanText | None = Field(default=None, description="Taken from the generation when omitted.")
    generation_id: RowId | None = None
    model: CleanText | None = None

    @model_validator(mode="after")
    def check_text(self) -> ComparisonResponseIn:
        validation.check_answer_or_generation(self.text, self.generation_id, "text")
        return self


class ComparisonCreate(PromptIn, FeedbackCommon):
    model_config = ConfigDict(extra="forbid")

    responses: Annotated[list[ComparisonResponseIn], Field(max_length=validation.MAX_ANSWERS)]
    ranking: Ranking | None = Field(default=None, description="Indices into responses, best first.")
    best_index: int | None = None

    @model_validator(mode="after")
    def check_ranking(self) -> ComparisonCreate:
        validation.check_comparison([r.id for r in self.responses], self.ranking, self.best_index)
        return self


class CorrectionCreate(PromptIn, FeedbackCommon):
    model_config = ConfigDict(extra="forbid")

    original_response: CleanText | None = Field(default=None, description="Taken from the generation when omitted.")
    corrected_response: NonEmptyText
    generation_id: RowId | None = None

    @model_validator(mode="after")
    def check_original(self) -> CorrectionCreate:
        validation.check_answer_or_generation(self.original_response, self.generation_id, "original_response")
        return self


class GenerationCreate(PromptIn):
    model_config = ConfigDict(extra="forbid")

    response: NonEmptyText
    model: CleanText | None = Field(default=None, max_length=300)
    model_version: CleanText | None = Field(default=None, max_length=300)
    parameters: FreeJSON | None = None
    annotator: CleanText | None = Field(default=None, max_length=200)
    metadata: FreeJSON | None = None


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
