"""One settings object for the whole package, read from the environment and a `.env` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/llmfl.db"


# The settings that are credentials: a child process that does not call those services gets none of them.
SECRET_FIELDS = frozenset({"chat_provider_api_key", "openrouter_api_key", "local_inference_api_key", "llmfl_api_key"})


class Settings(BaseSettings):
    """Settings of llm-feedback-loop. Every field can be set as an upper-case environment variable."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL. SQLite (default, a file under ./data/) or PostgreSQL "
        "(postgresql://user:pass@host/db). Plain driver-less URLs are given the async driver.",
    )
    base_model: str | None = Field(default=None, description="Hub id or local folder of the model to start from.")
    checkpoint_dir: Path = Field(
        default=Path("./checkpoints"), description="Where training runs write their checkpoints."
    )
    host: str = Field(default="127.0.0.1", description="Address `llmfl serve` binds to.")
    port: int = Field(default=3000, ge=1, le=65535, description="Port `llmfl serve` listens on.")
    model_device: str = Field(default="auto", description="Where the local model runs: auto, cpu, cuda, cuda:N.")
    model_packed_linear: bool = Field(
        default=True,
        description="On a CPU, the float32 linear layers of a model that only generates (the served model, the "
        "evaluation's answers) multiply with weights prepacked for oneDNN (models/packed.py): 1.4-3x faster "
        "products, one more copy of the weights in memory. Read when such a model loads.",
    )
    chat_provider_url: str | None = Field(
        default=None,
        description="An OpenAI-compatible endpoint that answers chat when asked for a remote provider "
        "(our `llmfl serve-model` at http://127.0.0.1:5005/v1, vLLM, Ollama, ...). Unset: the local model answers.",
    )
    chat_provider_model: str | None = Field(default=None, description="Model name sent to CHAT_PROVIDER_URL.")
    chat_provider_api_key: str | None = Field(default=None, description="Bearer token for CHAT_PROVIDER_URL.")
    openrouter_api_key: str | None = Field(
        default=None, description="Use OpenRouter as the remote provider (when CHAT_PROVIDER_URL is unset)."
    )
    openrouter_model: str = Field(default="meta-llama/llama-3.1-8b-instruct", description="Model asked of OpenRouter.")
    local_inference_url: str | None = Field(
        default=None,
        description="Where `provider=local` chat goes: a running `llmfl serve-model` (e.g. http://127.0.0.1:5005/v1). "
        "Unset: the active model version is loaded into the service process.",
    )
    local_inference_api_key: str | None = Field(
        default=None, description="API key sent to LOCAL_INFERENCE_URL (a key of that `llmfl serve-model`'s database)."
    )
    chat_timeout_s: float = Field(default=120.0, gt=0, description="Seconds a chat provider may take per answer.")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body the API accepts (413 above it)."
    )
    # Accounts and access.
    auth_required: bool = Field(
        default=True,
        description="Every endpoint needs a signed-in user or an API key. False: every caller is an admin, "
        "allowed only on a loopback address (for a single user on their own machine).",
    )
    trusted_hosts: Annotated[list[str], NoDecode] = Field(
        default=["127.0.0.1", "localhost", "::1", "[::1]"],
        description="Host headers the service answers (others get 400), comma-separated; `*` for any. Add "
        "your public name when you put the service behind a domain: TRUSTED_HOSTS=feedback.example.org,localhost",
    )
    llmfl_api_key: str | None = Field(
        default=None,
        description="The key clients of a running service send: `llmfl loop --service-url`, scripts "
        "(create one with `llmfl keys create --role admin`).",
    )
    session_hours: float = Field(default=12.0, gt=0, le=24 * 90, description="How long a web login lasts.")
    # Training started from the API.
    exports_dir: Path = Field(
        default=Path("./exports"),
        description="Where `data` of POST /v1/runs may point (besides exports the service made itself).",
    )
    max_concurrent_runs: int = Field(
        default=1, ge=1, le=64, description="Training runs started from the API that may run at once; others queue."
    )
    # Limits on what one request may cost.
    max_answers_per_comparison: int = Field(
        default=16, ge=2, le=256, description="Most answers one comparison (or annotation) may hold."
    )
    max_pairs_per_prompt: int = Field(
        default=64, ge=1, le=10_000, description="Most preference pairs an export makes from one prompt."
    )

    @field_validator("trusted_hosts", mode="before")
    @classmethod
    def split_hosts(cls, value: Any) -> Any:
        """TRUSTED_HOSTS=a.example,b.example (or a JSON list) from the environment."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [host.strip() for host in text.split(",") if host.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def use_async_driver(cls, url: str) -> str:
        """Accept the URLs people write (`sqlite:///x.db`, `postgresql://...`) and pick the async driver."""
        url = url.strip()
        for plain, async_url in (
            ("sqlite://", "sqlite+aiosqlite://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
        ):
            if url.startswith(plain):
                return async_url + url[len(plain) :]
        if url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            return url
        raise ValueError(
            f"DATABASE_URL {url!r} is not supported: use sqlite:///path/to.db or postgresql://user:pass@host/db"
        )

    def environment(self, *, secrets: bool = True) -> dict[str, str]:
        """These settings as environment variables, for a child process (`llmfl serve`, `llmfl train`) that
        must see what this process sees: one upper-case variable per field. An unset field is "" so that a
        `.env` file in the child's folder cannot set it there either (the environment wins over `.env`).
        `secrets=False`: the API keys (SECRET_FIELDS) are "" too, for a child that needs none (training)."""

        def text(value: Any) -> str:
            if value is None:
                return ""
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, list):
                return ",".join(str(item) for item in value)
            return str(value)

        hidden = set() if secrets else SECRET_FIELDS
        return {name.upper(): "" if name in hidden else text(getattr(self, name)) for name in type(self).model_fields}


OPENROUTER_URL = "https://openrouter.ai/api/v1"


def remote_chat_endpoint(settings: Settings) -> tuple[str, str | None, str | None] | None:
    """(base URL, model, API key) of the remote chat provider, or None if none is configured."""
    if settings.chat_provider_url:
        return settings.chat_provider_url, settings.chat_provider_model, settings.chat_provider_api_key
    if settings.openrouter_api_key:
        return OPENROUTER_URL, settings.openrouter_model, settings.openrouter_api_key
    return None


@lru_cache
def get_settings() -> Settings:
    return Settings()
