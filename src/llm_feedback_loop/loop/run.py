"""A whole loop run: the active version made sure of, the service (one given by URL, or `llmfl serve`
started for the loop with a key the loop gives itself and revokes at the end), the rounds, the report.
What `llmfl loop` and `llmfl demo` call; they pass the Settings they were started with, the database and
where progress is said. Errors are `LoopError`, `ServiceError`, `ServiceStartError`, `ModelLoadError` or
`httpx.HTTPError`; the report is written however the rounds end."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, TypeVar

from llm_feedback_loop.loop.context import LoopRun, LoopSettings
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.database import RunOnDatabase, in_session
from llm_feedback_loop.storage.tables import ModelVersion

T = TypeVar("T")


def active_version(database: RunOnDatabase, settings: Settings) -> ModelVersion:
    """The active version: on first use, the base model (BASE_MODEL, else SmolLM2) registered, as the service
    does when it first answers."""
    from llm_feedback_loop.models.loader import DEFAULT_MODEL_NAME, DEFAULT_SOURCE
    from llm_feedback_loop.models.registry import ensure_active_version

    base, name = (settings.base_model, None) if settings.base_model else (DEFAULT_SOURCE, DEFAULT_MODEL_NAME)
    return in_session(database, lambda session: ensure_active_version(session, base, name), commit=True)


FEW_HELD_OUT = 20  # held-out prompts below which the loop says its intervals are rough


def run_loop(
    settings: LoopSettings,
    app_settings: Settings,
    database: RunOnDatabase,
    say: Callable[[str], None],
    service_url: str | None = None,
) -> list[dict[str, Any]]:
    """Run the loop's rounds against the service (started here unless a URL is given, whose key is
    `app_settings.llmfl_api_key`); write the report; returns the rounds."""
    import httpx

    from llm_feedback_loop.auth.accounts import revoke_key, service_key
    from llm_feedback_loop.loop.rounds import run_rounds, write_loop_report
    from llm_feedback_loop.loop.service import own_service

    active_version(database, app_settings)
    settings.folder.mkdir(parents=True, exist_ok=True)
    held_out = len(settings.objective.eval_prompts)
    if held_out < FEW_HELD_OUT:
        say(
            f"note: task {settings.objective.name!r} has {held_out} held-out prompts; with fewer than "
            f"{FEW_HELD_OUT}, a gain's interval (bootstrap over prompts) is rough, and promotion on it is a guess"
        )
    key, key_prefix = app_settings.llmfl_api_key, None
    if service_url is None:  # the loop's own service: an admin key it gives itself, revoked at the end
        own_key, key = in_session(
            database, lambda session: service_key(session, f"llmfl loop {settings.name}"), commit=True
        )
        key_prefix = own_key.prefix
    try:
        service = (
            own_service(settings.folder, app_settings) if service_url is None else nullcontext(service_url.rstrip("/"))
        )
        headers = {"Authorization": f"Bearer {key}"}
        timeout = app_settings.chat_timeout_s + 30
        with service as url, httpx.Client(base_url=url, timeout=timeout, headers=headers) as client:
            run = LoopRun(settings, client, database, say, app_settings)
            try:
                return run_rounds(run)
            finally:
                say(f"report: {write_loop_report(run)} (and report.json)")
    finally:
        if key_prefix is not None:
            prefix = key_prefix
            in_session(database, lambda session: revoke_key(session, prefix), commit=True)
