"""Ways around the roles that a security review tried, each shut: reading others' answers through feedback,
replaying a key's answer, guessing passwords, a NUL in the URL, a GET that generates, redirects off-site."""

from __future__ import annotations

from fastapi.testclient import TestClient

from llm_feedback_loop.web.pages import safe_next
from tests.support.accounts import ANONYMOUS, bearer


def test_an_annotator_cannot_read_other_peoples_answers_through_feedback(
    client: TestClient, api_keys: dict[str, str]
) -> None:
    annie = bearer(api_keys["annotator"])
    secret = {"prompt": "p", "response": "BOB'S SECRET ANSWER", "model_version": "v9", "annotator": "bob"}
    theirs = client.post("/v1/generations", json=secret).json()["id"]  # an admin logs it for bob
    mine = client.post("/v1/generations", json=secret | {"annotator": None}, headers=annie).json()["id"]
    for path, body in (
        ("/v1/ratings", {"prompt": "p", "generation_id": theirs, "rating": "up"}),
        ("/v1/corrections", {"prompt": "p", "generation_id": theirs, "corrected_response": "better"}),
        (
            "/v1/comparisons",
            {"prompt": "p", "responses": [{"generation_id": theirs}, {"text": "x"}], "ranking": [0, 1]},
        ),
        ("/v1/annotations", {"prompt": "p", "answers": [{"generation_id": theirs, "rating": "up"}]}),
    ):
        refused = client.post(path, json=body, headers=annie)
        assert refused.status_code == 422 and "does not exist" in refused.json()["message"], path
        assert "SECRET" not in refused.text
    own = client.post("/v1/ratings", json={"prompt": "p", "generation_id": mine, "rating": "up"}, headers=annie)
    assert own.status_code == 201 and own.json()["response"] == "BOB'S SECRET ANSWER"
    # A viewer reads everything anyway; an admin may link any answer.
    assert client.post("/v1/ratings", json={"prompt": "p", "generation_id": theirs, "rating": "up"}).status_code == 201


def test_answers_holding_a_key_are_never_kept_and_replays_stay_with_the_key(
    client: TestClient, api_keys: dict[str, str]
) -> None:
    headers = {"Idempotency-Key": "same-key"}
    body = {"user": "root", "role": "viewer", "name": "k1"}
    first = client.post("/v1/keys", json=body, headers=headers)
    second = client.post("/v1/keys", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["key"] != second.json()["key"]  # not replayed: a key is shown once and never stored
    assert "idempotent-replayed" not in second.headers

    # root's viewer key must not get the answer root's admin key got with the same Idempotency-Key.
    viewer_of_root = first.json()["key"]
    rating = {"prompt": "p", "response": "r", "rating": "up"}
    made = client.post("/v1/ratings", json=rating, headers={"Idempotency-Key": "k2"})
    assert made.status_code == 201
    replay = client.post("/v1/ratings", json=rating, headers=bearer(viewer_of_root) | {"Idempotency-Key": "k2"})
    assert replay.status_code == 403 and "idempotent-replayed" not in replay.headers


def test_password_guessing_is_slowed_down(client: TestClient) -> None:
    created = client.post("/v1/users", json={"name": "gina", "role": "viewer", "password": "right password"})
    assert created.status_code == 201
    for _ in range(10):
        guess = client.post("/v1/auth/login", json={"name": "gina", "password": "wrong guess"}, headers=ANONYMOUS)
        assert guess.status_code == 401
    blocked = client.post("/v1/auth/login", json={"name": "gina", "password": "right password"}, headers=ANONYMOUS)
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    echoed = client.post("/v1/auth/login", json={"name": "x", "password": "p" * 2000}, headers=ANONYMOUS)
    assert echoed.status_code == 422 and "ppppp" not in echoed.text  # a password is never sent back


def test_guesses_from_elsewhere_do_not_lock_the_owner_out(client: TestClient) -> None:
    """Ten wrong guesses at a name lock it at the addresses that guessed, not for its owner signing in from
    another address; a guesser that moves to a new address gets one try there before the name's lock holds."""
    created = client.post("/v1/users", json={"name": "hana", "role": "viewer", "password": "right password"})
    assert created.status_code == 201

    transport = client._transport  # the address the app sees as the caller's (starlette's test transport)
    own = transport.client  # type: ignore[attr-defined]

    def sign_in(address: str, password: str) -> int:
        transport.client = (address, 40000)  # type: ignore[attr-defined]
        try:
            body = {"name": "hana", "password": password}
            return client.post("/v1/auth/login", json=body, headers=ANONYMOUS).status_code
        finally:
            transport.client = own  # type: ignore[attr-defined]

    for guesser in (f"10.0.0.{i}" for i in range(1, 6)):  # five addresses, two guesses each
        for _ in range(2):
            assert sign_in(guesser, "wrong guess") == 401
    assert sign_in("10.0.0.1", "right password") == 429  # the name is locked where it was guessed at
    assert sign_in("10.0.0.9", "another guess") == 401  # a new address: one try...
    assert sign_in("10.0.0.9", "right password") == 429  # ...then the name's lock holds there too
    assert sign_in("192.168.1.7", "right password") == 200  # the owner, elsewhere, signs in
    assert sign_in("10.0.0.2", "right password") == 429  # and the guessers stay locked out after it


def test_a_nul_in_the_url_or_a_name_is_a_client_error(client: TestClient) -> None:
    for path in ("/v1/feedback?annotator=a%00b", "/v1/ratings?model=a%00b", "/v1/tasks/progress?batch=%00"):
        response = client.get(path)
        assert response.status_code == 400 and "NUL" in response.json()["message"], path
    assert client.patch("/v1/users/a%00b", json={"disabled": True}).status_code == 400
    login = client.post("/v1/auth/login", json={"name": "a\u0000b", "password": "x"}, headers=ANONYMOUS)
    assert login.status_code in (401, 422)


def test_numbers_and_dates_out_of_range_are_client_errors(client: TestClient) -> None:
    for path in ("/v1/runs/99999999999999999999", "/v1/runs/99999999999999999999/log", "/v1/runs?offset=100000000"):
        assert client.get(path).status_code == 422, path
    assert client.post("/v1/runs/99999999999999999999/stop").status_code == 422
    naive = client.post("/v1/keys", json={"user": "root", "expires_at": "2099-01-01T00:00:00"})
    assert naive.status_code == 201 and naive.json()["expires_at"].startswith("2099-01-01T00:00:00")
    edge = client.post("/v1/keys", json={"user": "root", "expires_at": "9999-12-31T23:59:59-05:00"})
    assert edge.status_code == 422 and "out of range" in edge.json()["message"]


def test_the_queue_generates_only_for_a_page_that_sends_the_csrf_token(
    client: TestClient, api_keys: dict[str, str]
) -> None:
    client.post("/v1/users", json={"name": "quinn", "role": "annotator", "password": "queue password"})
    client.post("/v1/auth/login", json={"name": "quinn", "password": "queue password"}, headers=ANONYMOUS)
    csrf = client.cookies["llmfl_csrf"]
    from_a_link = client.get("/v1/tasks/next", headers=ANONYMOUS)  # e.g. <img src> on another site
    assert from_a_link.status_code == 403 and "CSRF" in from_a_link.json()["message"]
    assert client.get("/v1/tasks/next", headers=ANONYMOUS | {"X-CSRF-Token": csrf}).json() == {"task": None}
    client.cookies.clear()


def test_sign_in_goes_on_to_local_paths_only() -> None:
    assert safe_next("/queue?batch=b") == "/queue?batch=b"
    for off_site in ("//evil.example", "/\t/evil.example", "/\\evil.example", "https://evil.example", "/a\nb"):
        assert safe_next(off_site) == "/", off_site
