"""Who may call what: every endpoint × every role, in one table.

The table must name every operation of the OpenAPI schema (a new endpoint without a row fails
`test_the_table_covers_every_endpoint`), and each row is checked as a request: anonymous → 401, a role
the row does not allow → 403, an allowed role → neither. Requests carry an empty JSON body, so an allowed
call stops at validation (422) or a missing row (404) and changes nothing.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from llm_feedback_loop.api.app import create_app
from llm_feedback_loop.settings import Settings
from tests.support.accounts import ANONYMOUS, bearer

ADMIN, ANNOTATOR, VIEWER = "admin", "annotator", "viewer"
ANY = (ADMIN, ANNOTATOR, VIEWER)
PUBLIC = "public"
COLLECTIONS = ("ratings", "comparisons", "corrections", "generations")

ACCESS: dict[tuple[str, str], tuple[str, ...] | str] = {
    ("GET", "/health"): PUBLIC,
    ("POST", "/v1/auth/login"): PUBLIC,
    ("POST", "/v1/auth/logout"): ANY,
    ("GET", "/v1/auth/me"): ANY,
    ("GET", "/v1/users"): (ADMIN,),
    ("POST", "/v1/users"): (ADMIN,),
    ("PATCH", "/v1/users/{name}"): (ADMIN,),
    ("GET", "/v1/keys"): (ADMIN,),
    ("POST", "/v1/keys"): (ADMIN,),
    ("DELETE", "/v1/keys/{prefix}"): (ADMIN,),
    # The original project's API: same payloads, now behind keys.
    ("GET", "/feedback"): (ADMIN, VIEWER),
    ("POST", "/feedback"): (ADMIN, ANNOTATOR),
    ("GET", "/feedback/export"): (ADMIN,),
    ("GET", "/rlhf-feedback"): (ADMIN, VIEWER),
    ("POST", "/rlhf-feedback"): (ADMIN, ANNOTATOR),
    ("GET", "/rlhf-feedback/export"): (ADMIN,),
    ("POST", "/chat"): (ADMIN, ANNOTATOR),
    ("POST", "/v1/chat"): (ADMIN, ANNOTATOR),
    ("POST", "/v1/chat/stream"): (ADMIN, ANNOTATOR),
    ("GET", "/v1/export/{kind}"): (ADMIN,),
    ("GET", "/v1/export/{kind}/manifest"): (ADMIN,),
    ("POST", "/v1/runs"): (ADMIN,),
    ("GET", "/v1/runs"): (ADMIN, VIEWER),
    ("GET", "/v1/runs/{run_id}"): (ADMIN, VIEWER),
    ("GET", "/v1/runs/{run_id}/metrics"): (ADMIN, VIEWER),
    ("GET", "/v1/runs/{run_id}/log"): (ADMIN, VIEWER),
    ("POST", "/v1/runs/{run_id}/stop"): (ADMIN,),
    ("POST", "/v1/runs/{run_id}/resume"): (ADMIN,),
    ("POST", "/v1/annotations"): (ADMIN, ANNOTATOR),
    ("POST", "/v1/arena/battles"): (ADMIN, ANNOTATOR),
    ("POST", "/v1/arena/votes"): (ADMIN, ANNOTATOR),
    ("GET", "/v1/arena/leaderboard"): ANY,
    ("POST", "/v1/tasks/import"): (ADMIN,),
    ("GET", "/v1/tasks/next"): (ADMIN, ANNOTATOR),
    ("GET", "/v1/tasks/progress"): ANY,
    ("GET", "/v1/stats"): (ADMIN, VIEWER),
    ("GET", "/v1/model-versions"): (ADMIN, VIEWER),
    ("POST", "/v1/ratings"): (ADMIN, ANNOTATOR),
    ("POST", "/v1/comparisons"): (ADMIN, ANNOTATOR),
    ("POST", "/v1/corrections"): (ADMIN, ANNOTATOR),
    ("POST", "/v1/generations"): (ADMIN, ANNOTATOR),
    ("GET", "/v1/feedback"): ANY,  # an annotator sees its own rows (tested below)
    **{("GET", f"/v1/{collection}"): ANY for collection in COLLECTIONS},
    **{("GET", f"/v1/{collection}/{{row_id}}"): ANY for collection in COLLECTIONS},
    **{("DELETE", f"/v1/{collection}/{{row_id}}"): (ADMIN,) for collection in COLLECTIONS},
}

PAGES: dict[str, tuple[str, ...]] = {
    "/": (ADMIN, ANNOTATOR),
    "/queue": (ADMIN, ANNOTATOR),
    "/arena": (ADMIN, ANNOTATOR),
    "/dashboard": (ADMIN, VIEWER),
}

PATH_VALUES = {
    "{name}": "nobody",
    "{prefix}": "zzzzzzzz",
    "{kind}": "sft",
    "{run_id}": "999999",
    "{row_id}": "999999",
}


def concrete(path: str) -> str:
    for placeholder, value in PATH_VALUES.items():
        path = path.replace(placeholder, value)
    return path


def test_the_table_covers_every_endpoint(tmp_path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/schema.db", _env_file=None)  # type: ignore[call-arg]
    schema = create_app(settings).openapi()
    operations = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    assert operations == set(ACCESS), "every endpoint needs a row in ACCESS (who may call it)"


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    body = {} if method in ("POST", "PATCH") else None
    return client.request(method, concrete(path), json=body, headers=headers).status_code


@pytest.mark.parametrize(("method", "path"), sorted(ACCESS))
def test_each_role_is_let_in_or_refused(client: TestClient, api_keys: dict[str, str], method: str, path: str) -> None:
    allowed = ACCESS[(method, path)]
    anonymous = call(client, method, path, ANONYMOUS)
    if allowed == PUBLIC:
        assert anonymous not in (401, 403), f"{method} {path} is public"
        return
    assert anonymous == 401, f"{method} {path} without credentials"
    for role in ANY:
        status = call(client, method, path, bearer(api_keys[role]))
        if role in allowed:
            assert status not in (401, 403), f"{role} may {method} {path} (got {status})"
        else:
            assert status == 403, f"{role} may not {method} {path} (got {status})"


@pytest.mark.parametrize("path", sorted(PAGES))
def test_pages_send_strangers_to_sign_in_and_refuse_other_roles(
    client: TestClient, api_keys: dict[str, str], path: str
) -> None:
    response = client.get(path, headers=ANONYMOUS, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    for role in ANY:
        response = client.get(path, headers=bearer(api_keys[role]), follow_redirects=False)
        assert response.status_code == (200 if role in PAGES[path] else 403), (role, path)


def test_a_bad_or_revoked_key_is_refused(client: TestClient, api_keys: dict[str, str]) -> None:
    assert client.get("/v1/auth/me", headers=bearer("llmfl_abcdefgh_wrong")).status_code == 401
    assert client.get("/v1/auth/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401
    assert client.get("/v1/auth/me", headers=bearer(api_keys["viewer"])).json()["name"] == "vera"
    prefix = api_keys["viewer"].split("_")[1]
    assert client.delete(f"/v1/keys/{prefix}").json()["state"] == "revoked"
    response = client.get("/v1/auth/me", headers=bearer(api_keys["viewer"]))
    assert response.status_code == 401 and "revoked" in response.json()["message"]


def test_rows_are_recorded_as_the_signed_in_user(client: TestClient, api_keys: dict[str, str]) -> None:
    annie, root = bearer(api_keys["annotator"]), bearer(api_keys["admin"])
    rating = {"prompt": "Why is the sky blue?", "response": "Rayleigh scattering.", "rating": "up"}
    created = client.post("/v1/ratings", json=rating, headers=annie)
    assert created.status_code == 201 and created.json()["annotator"] == "annie"
    legacy = client.post("/feedback", json=rating | {"model": "m"}, headers=annie)
    assert legacy.status_code == 201
    # An annotator cannot write as someone else; an admin may record on behalf of a named annotator (imports).
    forged = client.post("/v1/ratings", json=rating | {"annotator": "bob"}, headers=annie)
    assert forged.status_code == 403 and "annie" in forged.json()["message"]
    assert client.post("/v1/ratings", json=rating | {"annotator": "bob"}, headers=root).json()["annotator"] == "bob"
    # An annotator lists only its own rows; a viewer sees all.
    own = client.get("/v1/ratings", headers=annie).json()
    assert own["total"] == 2 and {row["annotator"] for row in own["items"]} == {"annie"}
    assert client.get("/v1/ratings", params={"annotator": "bob"}, headers=annie).status_code == 403
    assert client.get("/v1/ratings", headers=bearer(api_keys["viewer"])).json()["total"] == 3
    bobs = client.get("/v1/ratings", params={"annotator": "bob"}).json()["items"][0]["id"]
    assert client.get(f"/v1/ratings/{bobs}", headers=annie).status_code == 404


def test_a_web_session_needs_the_csrf_token_to_write(client: TestClient, api_keys: dict[str, str]) -> None:
    created = client.post("/v1/users", json={"name": "wanda", "role": "annotator", "password": "correct horse"})
    assert created.status_code == 201
    wrong = client.post("/v1/auth/login", json={"name": "wanda", "password": "wrong horse"}, headers=ANONYMOUS)
    assert wrong.status_code == 401
    login = client.post("/v1/auth/login", json={"name": "wanda", "password": "correct horse"}, headers=ANONYMOUS)
    assert login.status_code == 200 and login.json()["role"] == "annotator"
    assert "httponly" in login.headers["set-cookie"].lower()
    csrf = client.cookies["llmfl_csrf"]
    rating = {"prompt": "p", "response": "r", "rating": "down"}
    assert client.post("/v1/ratings", json=rating, headers=ANONYMOUS).status_code == 403  # cookie, no token
    made = client.post("/v1/ratings", json=rating, headers=ANONYMOUS | {"X-CSRF-Token": csrf})
    assert made.status_code == 201 and made.json()["annotator"] == "wanda"
    assert client.get("/v1/auth/me", headers=ANONYMOUS).json()["via"] == "session"
    assert client.post("/v1/auth/logout", headers=ANONYMOUS | {"X-CSRF-Token": csrf}).status_code == 204
    client.cookies.clear()
    assert client.get("/v1/auth/me", headers=ANONYMOUS).status_code == 401


def test_a_login_link_works_once(client: TestClient, settings: Settings) -> None:
    import asyncio

    from llm_feedback_loop.auth import accounts
    from llm_feedback_loop.storage.engine import create_engine, create_session_factory

    async def link() -> str:
        engine = create_engine(settings.database_url)
        async with create_session_factory(engine)() as session:
            token = await accounts.create_login_link(session, await accounts.get_user(session, "annie"))
            await session.commit()
        await engine.dispose()
        return token

    token = asyncio.run(link())
    first = client.get(f"/login?token={token}&next=/queue", headers=ANONYMOUS, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/queue"
    assert client.get("/v1/auth/me", headers=ANONYMOUS).json()["name"] == "annie"
    client.cookies.clear()
    again = client.get(f"/login?token={token}", headers=ANONYMOUS, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/login?expired=1"
    offsite = client.get("/login?token=x&next=//evil.example", headers=ANONYMOUS, follow_redirects=False)
    assert offsite.headers["location"].startswith("/login")


def test_without_authentication_everyone_is_an_admin(tmp_path) -> None:
    """AUTH_REQUIRED=false (allowed on loopback only, see test_cli): the original, open behaviour."""
    settings = Settings(database_url=f"sqlite:///{tmp_path}/open.db", auth_required=False, _env_file=None)  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as open_client:
        rating = {"prompt": "p", "response": "r", "rating": "up", "annotator": "anyone"}
        assert open_client.post("/v1/ratings", json=rating).json()["annotator"] == "anyone"
        assert open_client.get("/v1/auth/me").json()["role"] == "admin"
