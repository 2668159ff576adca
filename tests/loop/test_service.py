"""The loop's child processes (its `llmfl serve`, each `llmfl train`) get the entry point's Settings as their
environment: the same settings, whatever the parent's environment or a `.env` file says."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_feedback_loop.settings import Settings


def test_settings_environment_gives_a_child_the_same_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("BASE_MODEL=from-dotenv\nPORT=4000\n")
    chosen = Settings(
        database_url=f"sqlite:///{tmp_path}/demo.db",
        base_model=None,  # unset: the child must not take the .env's
        checkpoint_dir=tmp_path / "checkpoints",
        trusted_hosts=["a.example", "localhost"],
        auth_required=False,
    )
    environment = chosen.environment()
    assert environment["BASE_MODEL"] == "" and environment["AUTH_REQUIRED"] == "false"
    for name in environment:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():  # what the child process is started with
        monkeypatch.setenv(name, value)
    child = Settings()
    assert not child.base_model and child.port == chosen.port == 4000  # the .env the parent read too
    same = {name for name in Settings.model_fields if getattr(child, name) == getattr(chosen, name)}
    unset_as_empty = {name for name in Settings.model_fields if getattr(chosen, name) is None}
    assert same | unset_as_empty == set(Settings.model_fields)
    assert child.database_url.startswith("sqlite+aiosqlite:///") and child.trusted_hosts == ["a.example", "localhost"]


def test_a_training_child_gets_the_settings_without_the_api_keys() -> None:
    """`llmfl train` children of the loop call no provider: their environment carries no key, not even one the
    parent's environment or a `.env` file holds."""
    from llm_feedback_loop.settings import SECRET_FIELDS

    chosen = Settings(
        _env_file=None,  # type: ignore[call-arg]
        chat_provider_api_key="sk-provider",
        openrouter_api_key="sk-router",
        local_inference_api_key="sk-local",
        llmfl_api_key="llmfl_x_y",
    )
    environment = chosen.environment(secrets=False)
    assert all(environment[name.upper()] == "" for name in SECRET_FIELDS)
    assert environment["DATABASE_URL"] == chosen.database_url
    assert chosen.environment()["OPENROUTER_API_KEY"] == "sk-router"  # the loop's own service does get them
