"""The feedback the store accepts, as validated payloads: the original project's formats and the `/v1` ones.

`Legacy*` are the original project's payloads (camelCase `bestIndex`), kept compatible: the original API and
`llmfl import` read them alike. `*Create` are the `/v1` API's. Both validate the same way (`validation.py`),
so a bad payload is refused with a message naming the field, and nothing is stored. No HTTP here: the API's
schemas (`api/schemas.py`) take these models from this module.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from llm_feedback_loop.feedback import validation

NonEmptyText = Annotated[str, AfterValidator(validation.non_empty_text)]
CleanText = Annotated[str, AfterValidator(validation.no_nul)]
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]  # an id a database can hold
# Free-form JSON (metadata, parameters): finite numbers, 64-bit integers, no NUL, nested at most 32 deep, 64 KiB.
FreeJSON = Annotated[dict[str, Any], AfterValidator(validation.free_json)]
Ranking = Annotated[list[int], Field(max_length=validation.MAX_ANSWERS)]


def describe_error(error: dict[str, Any]) -> str:
    """One of Pydantic's validation errors as a sentence naming the field: `responses.0.text: must not be empty`."""
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    return f"{'.'.join(location)}: {message}" if location else message


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
