"""The per-client token endpoint limit over two `ostiary serve` processes: shared through
PostgreSQL, or through Redis when OSTIARY_REDIS_URL is set."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from e2e_server import (
    OstiaryServer,
    postgres_database,
    postgres_unreachable,
    start_server,
    stop_server,
)

LIMIT = 20
SYNC_INTERVAL = 0.2
REDIS_URL = "redis://127.0.0.1:6379/0"
SHARED = 15.0  # both processes refuse this soon after the budget is spent


def redis_unreachable() -> str | None:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as exc:
        return f"Redis at 127.0.0.1:6379 is not reachable ({exc})"
    return None


@pytest.fixture(params=["database", "redis"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OstiaryServer, OstiaryServer, str]]:
    reason = postgres_unreachable()
    if reason is None and request.param == "redis":
        reason = redis_unreachable()
    if reason is not None:
        pytest.skip(f"{reason}; CI starts it (.ci/run)")
    folder = tmp_path_factory.mktemp(f"ostiary-limits-{request.param}")
    with postgres_database() as url:
        settings = {
            "OSTIARY_DATABASE_URL": url,
            "OSTIARY_ISSUER": "http://127.0.0.1:1",
            "OSTIARY_TOKEN_RATE_LIMIT": str(LIMIT),
            # a window no run of this test crosses (it starts at midnight UTC)
            "OSTIARY_TOKEN_RATE_WINDOW": "86400",
            "OSTIARY_RATE_LIMIT_SYNC_INTERVAL": str(SYNC_INTERVAL),
        }
        if request.param == "redis":
            settings["OSTIARY_REDIS_URL"] = REDIS_URL
            # Redis outlives the test (and is shared): counters of this run only
            settings["OSTIARY_REDIS_PREFIX"] = f"ostiary-test-{secrets.token_hex(6)}"
        first = start_server("postgresql", folder, settings, name="first")
        second = None
        try:
            second = start_server("postgresql", folder, settings, name="second")
            yield first, second, url
        finally:
            for process in (second, first):
                if process is not None:
                    stop_server(process)
        for process in (first, second):
            assert process is not None
            assert "Traceback (most recent call last)" not in process.log(), process.log_tail()


def test_one_budget_per_client_over_two_processes(
    pair: tuple[OstiaryServer, OstiaryServer, str],
) -> None:
    first, second, url = pair
    client = first.create_client(
        name="Limited Job", grant_types="client_credentials", scopes="read"
    )
    auth = (client["client_id"], client["client_secret"])

    def token(process: OstiaryServer) -> httpx.Response:
        return httpx.post(
            f"{process.base_url}/token",
            data={"grant_type": "client_credentials"},
            auth=auth,
            timeout=10,
        )

    answers = [token((first, second)[i % 2]) for i in range(2 * LIMIT)]
    ok = sum(1 for answer in answers if answer.status_code == 200)
    assert LIMIT <= ok <= 2 * LIMIT, [a.status_code for a in answers]
    for answer in answers:
        if answer.status_code != 200:
            assert (answer.status_code, answer.json()["error"]) == (429, "slow_down")
            assert 1 <= int(answer.headers["retry-after"]) <= 86400

    # once both have shared, both refuse: the budget is one for the two processes
    deadline = time.monotonic() + SHARED
    refusing: set[int] = set()
    while len(refusing) < 2 and time.monotonic() < deadline:
        for process in (first, second):
            answer = token(process)
            if answer.status_code == 429:
                refusing.add(process.port)
            else:
                assert answer.status_code == 200, answer.text
                ok += 1
        time.sleep(SYNC_INTERVAL)  # bounded polling: wait for the next share
    assert len(refusing) == 2, "a process still admits past the shared limit"
    assert ok <= LIMIT + 2 * LIMIT  # far inside what a 0.2 s share interval allows

    # a different client is untouched
    other = second.create_client(name="Other Job", grant_types="client_credentials", scopes="r")
    fine = httpx.post(
        f"{first.base_url}/token",
        data={"grant_type": "client_credentials"},
        auth=(other["client_id"], other["client_secret"]),
        timeout=10,
    )
    assert fine.status_code == 200, fine.text
    if "OSTIARY_REDIS_URL" not in first.settings:
        # what the processes shared is what they admitted
        stored = asyncio.run(_stored_count(url, client["client_id"]))
        assert stored <= ok and stored >= LIMIT


async def _stored_count(url: str, client_id: str) -> int:
    connection = await asyncpg.connect(url.replace("postgresql://", "postgres://", 1))
    try:
        count: int = await connection.fetchval(
            "SELECT coalesce(sum(count), 0) FROM rate_counters WHERE key = $1", client_id
        )
        return count
    finally:
        await connection.close()


def test_failed_guesses_count_across_processes(
    pair: tuple[OstiaryServer, OstiaryServer, str],
) -> None:
    """Five wrong passwords spread over both processes: the next guess is refused at either
    (password grant; the sign-in page shares these counters)."""
    first, second, _ = pair
    username = "carol"
    first.create_user(username, "correct horse battery")
    client = first.create_client(
        name="Legacy App",
        grant_types="password",
        scopes="read",
        extra=("--legacy-password-grant",),
    )
    auth = (client["client_id"], client["client_secret"])

    def guess(process: OstiaryServer, password: str) -> httpx.Response:
        form = {"grant_type": "password", "username": username, "password": password}
        return httpx.post(f"{process.base_url}/token", data=form, auth=auth, timeout=30)

    for n in range(5):
        wrong = guess((first, second)[n % 2], f"wrong-{n}")
        assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant"), wrong.text
    for process in (first, second):
        refused = guess(process, "correct horse battery")
        assert (refused.status_code, refused.json()["error"]) == (429, "slow_down")
        assert int(refused.headers["retry-after"]) > 0
