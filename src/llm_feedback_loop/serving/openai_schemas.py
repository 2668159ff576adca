"""Request bodies of the OpenAI-compatible endpoints, validated with messages that name the field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llm_feedback_loop.serving.engine import SamplingParams

MAX_STOPS = 4
MAX_STOP_CHARS = 200  # each stop string is looked for in the text after every token
# A sampling seed: what torch's generator takes (a signed or unsigned 64-bit number; larger ones fail there).
Seed = Annotated[int, Field(ge=-(2**63), le=2**64 - 1)]


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class StreamOptions(BaseModel):
    include_usage: bool = False


class SamplingFields(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI clients send fields we do not use (user, logprobs, ...)

    model: str | None = None
    n: Annotated[int, Field(ge=1, le=8)] = 1
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 1.0
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    max_tokens: Annotated[int | None, Field(ge=1, le=32768)] = None
    max_completion_tokens: Annotated[int | None, Field(ge=1, le=32768)] = None
    stop: str | list[str] | None = None
    seed: Seed | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def check_stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        stops = [value] if isinstance(value, str) else (value or [])
        if len(stops) > MAX_STOPS or any(not s or len(s) > MAX_STOP_CHARS for s in stops):
            raise ValueError(f"stop takes up to {MAX_STOPS} non-empty strings of at most {MAX_STOP_CHARS} characters")
        return value

    def sampling(self, default_max_tokens: int) -> SamplingParams:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            max_tokens=self.max_completion_tokens or self.max_tokens or default_max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=stops,
            seed=self.seed,
        )


class ChatCompletionRequest(SamplingFields):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]


class CompletionRequest(SamplingFields):
    # Text, or token ids (as OpenAI's completions API and vLLM take them: what `serving/remote.py` sends).
    prompt: str | list[str] | Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


class GenerateRequest(BaseModel):
    """The original inference server's `POST /generate`."""

    prompt: Annotated[str, Field(min_length=1)]
    max_tokens: Annotated[int, Field(ge=1, le=32768)] = 256


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A registered version, by id or name (llmfl models list); default the active version. "
        "Folders and hub ids are refused: register them first (llmfl models add).",
    )
