"""Secrets never reach a client or the log: a chat provider that echoes the key it was sent, a provider URL
with a password in it, and log records that hold keys."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from llm_feedback_loop.logging_redaction import (
    RedactSecrets,
    install_log_redaction,
    redact,
    split_userinfo,
    url_without_credentials,
)
from llm_feedback_loop.settings import Settings
from tests.support.accounts import admin_client
from tests.support.fake_openai import fake_openai_server

PROVIDER_KEY = "sk-proj-Zq8v2LxT0b9YkW3mN5rA"
PASSWORD = "hunter2-Pa55word"


def service(settings: Settings, **overrides: object) -> TestClient:
    return admin_client(settings.model_copy(update=overrides))


def with_password(url: str) -> str:
    return url.replace("http://", f"http://proxyuser:{PASSWORD}@")


@pytest.mark.parametrize("status", [401, 500])
@pytest.mark.parametrize("model", [None, "m"], ids=["asks-models", "named-model"])
def test_a_provider_that_echoes_the_key_leaks_nothing(
    settings: Settings, caplog: pytest.LogCaptureFixture, status: int, model: str | None
) -> None:
    """The provider refuses with a body that echoes our Authorization header; CHAT_PROVIDER_URL holds a
    password. The client of /v1/chat gets the status and its standard reason, nothing else."""
    received: list[str] = []
    with (
        fake_openai_server(refuse_with=status, received=received) as url,
        service(
            settings,
            chat_provider_url=with_password(url),
            chat_provider_api_key=PROVIDER_KEY,
            chat_provider_model=model,
        ) as client,
        caplog.at_level(logging.ERROR),
    ):
        response = client.post("/v1/chat", json={"prompt": "Halo", "n": 2, "provider": "remote"})
    assert received and set(received) == {f"Bearer {PROVIDER_KEY}"}  # the key went, and came back in the body
    assert response.status_code == 502
    shown = response.text
    for secret in (PROVIDER_KEY, PASSWORD, "proxyuser", "rejected credentials"):
        assert secret not in shown
    reason = {401: "401 Unauthorized", 500: "500 Internal Server Error"}[status]
    assert f"{url}: " in response.json()["message"] and f"it answered {reason}" in response.json()["message"]
    # The log keeps the start of the body, the key redacted.
    assert "rejected credentials: Bearer ***" in caplog.text
    assert PROVIDER_KEY not in caplog.text and PASSWORD not in caplog.text


def test_url_credentials_without_a_key_are_sent_as_basic_auth_and_never_shown(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    received: list[str] = []
    basic = base64.b64encode(f"proxyuser:{PASSWORD}".encode()).decode()
    with (
        fake_openai_server(refuse_with=403, received=received) as url,
        service(settings, chat_provider_url=with_password(url), chat_provider_model="m") as client,
        caplog.at_level(logging.ERROR),
    ):
        response = client.post("/chat", params={"count": 2}, json={"prompt": "Halo"})
    assert set(received) == {f"Basic {basic}"}
    assert response.status_code == 502 and "it answered 403 Forbidden" in response.json()["message"]
    for secret in (basic, PASSWORD):
        assert secret not in response.text and secret not in caplog.text


def test_an_unreachable_provider_with_a_password_in_its_url(settings: Settings) -> None:
    with service(settings, chat_provider_url=f"http://admin:{PASSWORD}@127.0.0.1:9/v1?api_key=qs-secret") as client:
        response = client.post("/v1/chat", json={"prompt": "Halo", "provider": "remote"})
    assert response.status_code == 502
    message = response.json()["message"]
    assert "http://127.0.0.1:9/v1?api_key=***" in message and "could not reach it (ConnectError)" in message
    assert PASSWORD not in response.text and "qs-secret" not in response.text and "admin:" not in response.text


@pytest.fixture
def record_factory() -> Iterator[None]:
    """Puts back the process's log record factory after a test that installs redaction."""
    before = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(before)


@pytest.mark.usefixtures("record_factory")
def test_log_records_are_redacted_wherever_they_are_made(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    install_log_redaction()  # idempotent: one wrapper
    our_key = "llmfl_abcdefgh_Q2xZ-9_wLkTqR7uVn0pB3sYdE5fGhJ"
    log = logging.getLogger("llm_feedback_loop.tests.redaction")
    with caplog.at_level(logging.INFO):
        log.info("key %s from %s", our_key, f"postgresql://llm:{PASSWORD}@db/llm")
        log.info({"authorization": f"Bearer {PROVIDER_KEY}"})
        try:
            raise RuntimeError(f"upstream said: Authorization: Bearer {PROVIDER_KEY}")
        except RuntimeError:
            log.exception("failed")
    assert our_key not in caplog.text and PROVIDER_KEY not in caplog.text and PASSWORD not in caplog.text
    assert "llmfl_abcdefgh_***" in caplog.text  # the prefix tells which key (llmfl keys list)
    assert "postgresql://llm:***@db/llm" in caplog.text and "upstream said: Authorization: Bearer ***" in caplog.text


def test_access_log_records_keep_their_arguments() -> None:
    """uvicorn's access formatter unpacks a record's arguments: redaction keeps their places and types."""
    from uvicorn.logging import AccessFormatter

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', None, None)
    record.args = ("127.0.0.1:5000", "GET", "/login?token=one-time-secret&next=/", "1.1", 200)
    RedactSecrets().filter(record)
    line = AccessFormatter('%(client_addr)s "%(request_line)s" %(status_code)s', use_colors=False).format(record)
    assert line == '127.0.0.1:5000 "GET /login?token=***&next=/ HTTP/1.1" 200 OK'


def test_what_is_redacted_and_what_is_not() -> None:
    assert redact(f"Authorization: Bearer {PROVIDER_KEY}") == "Authorization: Bearer ***"
    hf_token = "hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567"
    assert redact(f"sk-or-v1-0123456789abcdef and {hf_token}") == "sk-*** and hf_***"
    assert redact("Authorization: Basic dXNlcjpwYXNz") == "Authorization: Basic ***"
    assert redact("https://u:p%40ss@host/v1?key=abc&model=m") == "https://u:***@host/v1?key=***&model=m"
    kept = "a task-list, sk-learn, hf_hub_download, a basic check, https://host/v1 and the user@example.org address"
    assert redact(kept) == kept
    assert url_without_credentials(f"https://u:{PASSWORD}@host:8443/v1?api-key=x&v=2") == (
        "https://host:8443/v1?api-key=***&v=2"
    )
    assert url_without_credentials("http://[::1]:5005/v1") == "http://[::1]:5005/v1"
    url, auth = split_userinfo(f"https://u%40corp:{PASSWORD}@host/v1")
    assert url == "https://host/v1" and auth is not None
    assert split_userinfo("http://127.0.0.1:5005/v1") == ("http://127.0.0.1:5005/v1", None)
