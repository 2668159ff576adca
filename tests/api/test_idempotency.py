"""`Idempotency-Key` on POSTs (api/guards/idempotency.py `IdempotentPosts`): a retried write stores its rows once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_feedback_loop.api.guards import idempotency, install_http_guards
from llm_feedback_loop.api.security import Authenticator
from llm_feedback_loop.settings import Settings
from llm_feedback_loop.storage.engine import create_engine, create_session_factory
from llm_feedback_loop.storage.migrate import upgrade_to_head
from llm_feedback_loop.storage.tables import IdempotencyRecord, utc_now
from tests.support.accounts import ANONYMOUS, bearer

RATING = {"prompt": "Apa itu Kubernetes?", "response": "Sistem orkestrasi kontainer.", "rating": "up"}


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def records(client: TestClient) -> list[IdempotencyRecord]:
    """The idempotency records in the service's database (read on the app's own event loop)."""
    sessions: async_sessionmaker[AsyncSession] = client.app.state.service.sessions  # type: ignore[attr-defined]

    async def load() -> list[IdempotencyRecord]:
        async with sessions() as session:
            return list(await session.scalars(select(IdempotencyRecord)))

    return client.portal.call(load)  # type: ignore[union-attr]


def test_a_retry_with_the_same_key_stores_one_row(client: TestClient) -> None:
    first = client.post("/v1/ratings", json=RATING, headers=key("rating-1"))
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    retry = client.post("/v1/ratings", json=RATING, headers=key("rating-1"))
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["content-type"] == first.headers["content-type"]
    assert retry.headers["x-content-type-options"] == "nosniff"  # a replay passes the other guards too
    listed = client.get("/v1/ratings").json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == first.json()["id"]
    # Another key, or none: a new row each.
    assert client.post("/v1/ratings", json=RATING, headers=key("rating-2")).json()["id"] != first.json()["id"]
    assert client.post("/v1/ratings", json=RATING).status_code == 201
    assert client.get("/v1/ratings").json()["total"] == 3
    assert len(records(client)) == 2  # no header: no record


def test_the_same_key_with_another_request_is_refused(client: TestClient) -> None:
    assert client.post("/v1/ratings", json=RATING, headers=key("k")).status_code == 201
    other_body = client.post("/v1/ratings", json={**RATING, "rating": "down"}, headers=key("k"))
    assert other_body.status_code == 422
    assert "Idempotency-Key reused with a different request" in other_body.json()["message"]
    other_path = client.post(
        "/v1/corrections", json={"prompt": "p", "original_response": "a", "corrected_response": "b"}, headers=key("k")
    )
    assert other_path.status_code == 422
    assert client.get("/v1/ratings").json()["total"] == 1
    assert client.get("/v1/corrections").json()["total"] == 0


def test_two_callers_with_the_same_key_are_independent(client: TestClient, api_keys: dict[str, str]) -> None:
    admin = client.post("/v1/ratings", json=RATING, headers=key("shared"))
    annie = client.post("/v1/ratings", json=RATING, headers={**key("shared"), **bearer(api_keys["annotator"])})
    assert admin.status_code == annie.status_code == 201
    assert admin.json()["id"] != annie.json()["id"]
    assert annie.json()["annotator"] == "annie"
    again = client.post("/v1/ratings", json=RATING, headers={**key("shared"), **bearer(api_keys["annotator"])})
    assert again.json() == annie.json() and again.headers["idempotent-replayed"] == "true"
    assert client.get("/v1/ratings").json()["total"] == 2


def test_a_refused_request_keeps_no_answer_and_may_be_retried_fixed(client: TestClient) -> None:
    invalid = client.post("/v1/ratings", json={**RATING, "rating": "sideways"}, headers=key("fix-me"))
    assert invalid.status_code == 422
    assert records(client) == []
    fixed = client.post("/v1/ratings", json=RATING, headers=key("fix-me"))
    assert fixed.status_code == 201 and "idempotent-replayed" not in fixed.headers
    assert client.get("/v1/ratings").json()["total"] == 1


def test_a_request_in_flight_answers_its_retries_409_until_abandoned(client: TestClient) -> None:
    assert client.post("/v1/ratings", json=RATING, headers=key("slow")).status_code == 201
    sessions: async_sessionmaker[AsyncSession] = client.app.state.service.sessions  # type: ignore[attr-defined]

    async def set_record(**values: object) -> None:
        async with sessions() as session:
            await session.execute(update(IdempotencyRecord).values(**values))
            await session.commit()

    # As the record stands while the first request runs.
    client.portal.call(lambda: set_record(status_code=None, body=None))  # type: ignore[union-attr]
    in_flight = client.post("/v1/ratings", json=RATING, headers=key("slow"))
    assert in_flight.status_code == 409 and "still in flight" in in_flight.json()["message"]
    assert in_flight.headers["retry-after"] == "1"
    # Unanswered for an hour: its process died; the retry runs.
    client.portal.call(lambda: set_record(created_at=utc_now() - timedelta(hours=1)))  # type: ignore[union-attr]
    rerun = client.post("/v1/ratings", json=RATING, headers=key("slow"))
    assert rerun.status_code == 201 and "idempotent-replayed" not in rerun.headers
    assert client.get("/v1/ratings").json()["total"] == 2


def test_records_expire_after_a_day(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    first = client.post("/v1/ratings", json=RATING, headers=key("old")).json()
    assert client.post("/v1/ratings", json=RATING, headers=key("forgotten")).status_code == 201
    sessions: async_sessionmaker[AsyncSession] = client.app.state.service.sessions  # type: ignore[attr-defined]

    async def age() -> None:
        async with sessions() as session:
            await session.execute(update(IdempotencyRecord).values(created_at=utc_now() - timedelta(hours=25)))
            await session.commit()

    client.portal.call(age)  # type: ignore[union-attr]
    monkeypatch.setattr(idempotency, "SWEEP_EVERY", timedelta(0))  # sweep on every answer, not every 10 minutes
    after = client.post("/v1/ratings", json=RATING, headers=key("old"))
    assert after.status_code == 201 and after.json()["id"] != first["id"]
    # The expired "forgotten" record was swept; "old" is the new one.
    assert [record.created_at > utc_now() - timedelta(hours=1) for record in records(client)] == [True]


def test_keys_are_bounded_and_callers_must_be_known(client: TestClient) -> None:
    too_long = client.post("/v1/ratings", json=RATING, headers=key("k" * 201))
    assert too_long.status_code == 400 and "Idempotency-Key" in too_long.json()["message"]
    assert client.post("/v1/ratings", json=RATING, headers=key("k" * 200)).status_code == 201
    # Without credentials the key is not looked at: the route answers 401, and nothing is kept.
    anonymous = client.post("/v1/ratings", json=RATING, headers={**key("anon"), **ANONYMOUS})
    assert anonymous.status_code == 401
    wrong_key = client.post("/v1/ratings", json=RATING, headers={**key("anon"), **bearer("llmfl_nope_nope")})
    assert wrong_key.status_code == 401
    assert len(records(client)) == 1


# --- the middleware alone, on a small app whose routes can be held, fail and stream ---------------------------


@asynccontextmanager
async def small_app(database_url: str, with_service: bool = True) -> AsyncIterator[SimpleNamespace]:
    """An app with the guards, a database and open access (every caller the same), and routes to drive them."""
    engine = create_engine(Settings(database_url=database_url, _env_file=None).database_url)  # type: ignore[call-arg]
    await upgrade_to_head(engine)
    sessions = create_session_factory(engine)
    app = FastAPI()
    world = SimpleNamespace(calls=0, gate=asyncio.Event(), sessions=sessions, app=app)

    @app.post("/held")
    async def held(request: Request) -> dict[str, int]:
        world.calls += 1
        call = world.calls
        await world.gate.wait()
        return {"call": call}

    @app.post("/unavailable")
    async def unavailable() -> JSONResponse:
        world.calls += 1
        return JSONResponse(status_code=503, content={"message": "try later"})

    @app.post("/broken")
    async def broken() -> None:
        world.calls += 1
        raise RuntimeError("the route failed")

    @app.post("/stream")
    async def stream() -> StreamingResponse:
        world.calls += 1

        async def lines() -> AsyncIterator[bytes]:
            for index in range(3):
                yield f'{{"call": {world.calls}, "line": {index}}}\n'.encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    if with_service:
        app.state.service = SimpleNamespace(sessions=sessions)
        app.state.auth = Authenticator(sessions, required=False)
    install_http_guards(app, Settings(trusted_hosts=["*"], _env_file=None))  # type: ignore[call-arg]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        world.client = client
        try:
            yield world
        finally:
            await engine.dispose()


async def record_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(IdempotencyRecord)) or 0


def test_a_concurrent_retry_gets_409_and_a_later_one_the_first_answer(database_url: str) -> None:
    async def scenario() -> None:
        async with small_app(database_url) as world:
            first = asyncio.create_task(world.client.post("/held", content=b"{}", headers=key("race")))
            while world.calls == 0:
                await asyncio.sleep(0.01)
            during = await world.client.post("/held", content=b"{}", headers=key("race"))
            assert during.status_code == 409 and "still in flight" in during.json()["message"]
            world.gate.set()
            answered = await first
            assert answered.status_code == 200 and answered.json() == {"call": 1}
            after = await world.client.post("/held", content=b"{}", headers=key("race"))
            assert after.json() == {"call": 1} and after.headers["idempotent-replayed"] == "true"
            assert world.calls == 1

    asyncio.run(scenario())


def test_a_first_request_taken_over_as_abandoned_does_not_overwrite_its_successor(database_url: str) -> None:
    async def scenario() -> None:
        async with small_app(database_url) as world:
            first = asyncio.create_task(world.client.post("/held", headers=key("slow")))
            while world.calls == 0:
                await asyncio.sleep(0.01)
            async with world.sessions() as session:  # as if it had been running for an hour
                await session.execute(update(IdempotencyRecord).values(created_at=utc_now() - timedelta(hours=1)))
                await session.commit()
            second = asyncio.create_task(world.client.post("/held", headers=key("slow")))
            while world.calls == 1:
                await asyncio.sleep(0.01)
            world.gate.set()
            assert (await first).json() == {"call": 1} and (await second).json() == {"call": 2}
            replay = await world.client.post("/held", headers=key("slow"))
            assert replay.json() == {"call": 2} and replay.headers["idempotent-replayed"] == "true"
            assert await record_count(world.sessions) == 1

    asyncio.run(scenario())


def test_a_failed_first_request_releases_its_key(database_url: str) -> None:
    async def scenario() -> None:
        async with small_app(database_url) as world:
            for path in ("/unavailable", "/broken"):
                for _ in range(2):
                    response = await world.client.post(path, headers=key(path))
                    assert response.status_code in (500, 503)
            assert world.calls == 4  # each retry ran again
            assert await record_count(world.sessions) == 0

    asyncio.run(scenario())


def test_a_streamed_answer_passes_through_and_is_replayed_whole(database_url: str) -> None:
    async def scenario() -> None:
        async with small_app(database_url) as world:
            first = await world.client.post("/stream", headers=key("s"))
            retry = await world.client.post("/stream", headers=key("s"))
            assert first.text.count("\n") == 3 and retry.text == first.text
            assert retry.headers["content-type"].startswith("application/x-ndjson")
            assert world.calls == 1

    asyncio.run(scenario())


def test_without_a_feedback_database_the_key_is_ignored(database_url: str) -> None:
    """The inference server has no `state.service`: it creates no rows, so it keeps no answers either."""

    async def scenario() -> None:
        async with small_app(database_url, with_service=False) as world:
            world.gate.set()
            for _ in range(2):
                assert (await world.client.post("/held", headers=key("x"))).status_code == 200
            assert world.calls == 2

    asyncio.run(scenario())
