"""`GET /health`: 200 while the database answers, 503 with `Retry-After` when it does not,
and 200 again by itself once it is back; never a secret in the answer. A flood of requests
costs one database check per second per process, and the answer is that fresh."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from server_app import (
    ISSUER,
    Clock,
    _pg_admin,
    fast_hasher,
    make_settings,
    postgres_unreachable,
    serve,
)

from ostiary.server.settings import Settings

pytestmark = pytest.mark.anyio


async def test_health_answers_200_on_each_backend(backend: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, issuer=ISSUER, database_url=backend)
    async with serve(settings, clock=Clock(), hasher=fast_hasher()) as served:
        response = await served.http.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "database": "ok"}
        assert response.headers["cache-control"] == "no-store"
        post = await served.http.post("/health")
        assert post.status_code == 405


async def test_health_is_503_while_postgresql_is_gone_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reason = await postgres_unreachable()
    if reason is not None:
        pytest.skip(f"{reason}; CI starts it")
    name = f"ostiary_health_{secrets.token_hex(6)}"
    password = "pw-" + secrets.token_hex(8)  # trust auth ignores it; it must never show
    url = f"postgresql://postgres:{password}@127.0.0.1:5432/{name}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        settings: Settings = make_settings(
            tmp_path, issuer=ISSUER, database_url=url, health_timeout=5
        )
        clock = Clock()
        async with serve(settings, clock=clock, hasher=fast_hasher()) as served:
            assert (await served.http.get("/health")).status_code == 200
            # the database disappears under the running server: its connections are cut
            await _pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)')
            clock.advance(1)  # the answer is at most one second old: the next is a new check
            down = await served.http.get("/health")
            assert down.status_code == 503
            assert down.json() == {"status": "unavailable", "database": "unavailable"}
            assert down.headers["retry-after"].isdigit()
            assert password not in down.text
            # an empty database of the same name answers SELECT 1 again: healthy, no restart
            await _pg_admin(f'CREATE DATABASE "{name}"')
            still_down = await served.http.get("/health")  # the same second: the same answer
            assert still_down.status_code == 503
            clock.advance(1)
            up = await served.http.get("/health")
            assert up.status_code == 200
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert password not in caplog.text


async def test_a_flood_of_health_requests_costs_one_database_check_per_second(
    backend: str, tmp_path: Path
) -> None:
    clock = Clock()
    settings = make_settings(tmp_path, issuer=ISSUER, database_url=backend)
    async with serve(settings, clock=clock, hasher=fast_hasher()) as served:
        health = served.runtime.health
        before = health.checks
        answers = await asyncio.gather(*(served.http.get("/health") for _ in range(200)))
        assert {answer.status_code for answer in answers} == {200}
        assert health.checks - before == 1  # every concurrent request shared one check
        answers = await asyncio.gather(*(served.http.get("/health") for _ in range(50)))
        assert {answer.status_code for answer in answers} == {200}
        assert health.checks - before == 1  # the same second: the answer is reused
        clock.advance(1)
        assert (await served.http.get("/health")).status_code == 200
        assert health.checks - before == 2
