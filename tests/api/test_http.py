"""HTTP hygiene of both servers (api/guards/): trusted hosts, cross-origin writes refused, security
headers, and a 413 that clients which send the whole body before reading can read."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from llm_feedback_loop.api.app import create_app
from llm_feedback_loop.api.guards.headers import CONTENT_SECURITY_POLICY
from llm_feedback_loop.api.guards.origin import TrustedHosts, host_name
from llm_feedback_loop.settings import Settings
from tests.support.accounts import ANONYMOUS

RATING = {"prompt": "Apa itu Kubernetes?", "response": "Sistem orkestrasi kontainer.", "rating": "up"}


def ratings_stored(client: TestClient) -> int:
    return client.get("/v1/ratings").json()["total"]


# --- cross-origin writes ----------------------------------------------------------------------------------------


def test_cross_origin_writes_are_refused_and_store_nothing(client: TestClient) -> None:
    evil = {"Origin": "https://evil.example"}
    refused = client.post("/v1/ratings", json=RATING, headers=evil)
    assert refused.status_code == 403
    assert refused.json()["message"].startswith("cross-origin request refused")
    assert "https://evil.example" in refused.json()["message"]
    # The form a page can send without a CORS preflight: text/plain carrying JSON.
    plain = client.post(
        "/v1/ratings", content=json.dumps(RATING), headers={**evil, "Content-Type": "text/plain;charset=UTF-8"}
    )
    assert plain.status_code == 403
    # Browsers that send no Origin still mark the request as cross-site; sandboxed pages send Origin: null.
    assert client.post("/v1/ratings", json=RATING, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.post("/v1/ratings", json=RATING, headers={"Origin": "null"}).status_code == 403
    # Same host, other port or scheme: another origin.
    assert client.post("/v1/ratings", json=RATING, headers={"Origin": "http://testserver:8080"}).status_code == 403
    assert client.post("/v1/ratings", json=RATING, headers={"Origin": "https://testserver"}).status_code == 403
    assert client.delete("/v1/ratings/1", headers=evil).status_code == 403
    assert ratings_stored(client) == 0


def test_same_origin_and_scripted_writes_pass(client: TestClient) -> None:
    same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/v1/ratings", json=RATING, headers=same).status_code == 201
    assert client.post("/v1/ratings", json=RATING, headers={"Origin": "http://testserver:80"}).status_code == 201
    assert client.post("/v1/ratings", json=RATING).status_code == 201  # a script: no Origin at all
    # Reading is not a write: a cross-origin GET is answered (the browser keeps the answer from the page).
    assert client.get("/v1/ratings", headers={"Origin": "https://evil.example"}).status_code == 200
    assert ratings_stored(client) == 3


# --- trusted hosts ------------------------------------------------------------------------------------------------


def test_a_host_not_trusted_gets_400_naming_the_setting(client: TestClient) -> None:
    response = client.get("/health", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert "TRUSTED_HOSTS" in response.json()["message"] and "evil.example" in response.json()["message"]
    assert response.headers["x-content-type-options"] == "nosniff"  # refusals carry the headers too
    write = client.post("/v1/ratings", json=RATING, headers={"Host": "rebound.example:8000"})
    assert write.status_code == 400
    assert client.get("/health", headers={"Host": "testserver:8000"}).status_code == 200
    assert ratings_stored(client) == 0


def test_host_names_and_patterns() -> None:
    assert host_name("Example.COM:8000") == "example.com"
    assert host_name("[::1]:8000") == "[::1]"
    assert host_name("[::1]") == "[::1]"
    assert host_name("localhost") == "localhost"
    guard = TrustedHosts(lambda *_: None, ["localhost", "::1", "*.example.org"], drain_bytes=0)  # type: ignore[arg-type]
    assert guard.trusts("localhost:8000") and guard.trusts("[::1]:9000")
    assert guard.trusts("feedback.example.org") and guard.trusts("a.b.example.org:443")
    assert not guard.trusts("example.org") and not guard.trusts("evilexample.org") and not guard.trusts("")
    assert not guard.trusts("localhost.evil.example")


def test_star_trusts_any_host(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/any.db", trusted_hosts=["*"], _env_file=None)  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as client:
        assert client.get("/health", headers={"Host": "whatever.example"}).status_code == 200


# --- security headers --------------------------------------------------------------------------------------------


def test_security_headers_on_every_answer_and_csp_on_pages(client: TestClient) -> None:
    for response in (client.get("/health"), client.get("/v1/ratings"), client.get("/login", headers=ANONYMOUS)):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["x-frame-options"] == "DENY"
    page = client.get("/login", headers=ANONYMOUS)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert "content-security-policy" not in client.get("/health").headers  # JSON is not a page
    # FastAPI's docs load their scripts from a CDN: no CSP there, the other headers still.
    docs = client.get("/docs")
    assert docs.status_code == 200 and "content-security-policy" not in docs.headers
    assert docs.headers["x-frame-options"] == "DENY"


# --- 413 a client can read ----------------------------------------------------------------------------------------


@pytest.fixture
def live_service(tmp_path: Path) -> Iterator[str]:
    """The service on a real uvicorn on 127.0.0.1 (free port) with MAX_BODY_BYTES = 1 MiB; yields its URL."""
    settings = Settings(database_url=f"sqlite:///{tmp_path}/live.db", max_body_bytes=1_048_576, _env_file=None)  # type: ignore[call-arg]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.mark.parametrize("size", [3_000_000, 6_000_000])
def test_413_is_readable_by_clients_that_send_the_whole_body_first(live_service: str, size: int) -> None:
    for _ in range(3):  # without draining, a reset was a matter of timing: ask more than once
        request = urllib.request.Request(
            f"{live_service}/v1/ratings", data=b"x" * size, headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 413
        assert refused.value.headers["Connection"] == "close"
        assert "MAX_BODY_BYTES" in json.loads(refused.value.read())["message"]


def test_413_without_content_length_is_readable(live_service: str) -> None:
    """A chunked body has no Content-Length: it is refused once it passes the limit, and drained as well."""
    host, port = live_service.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        chunks = (b"x" * 65_536 for _ in range(64))  # 4 MiB
        connection.request("POST", "/v1/ratings", body=chunks, encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 413
        assert "MAX_BODY_BYTES" in json.loads(response.read())["message"]
    finally:
        connection.close()
