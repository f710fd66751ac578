"""The limits over two `ostiary serve` processes, shared through PostgreSQL, or through Redis
when OSTIARY_REDIS_URL is set: the per-client token budget and its back-off, failed password
guesses, and failed client authentication per address."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator, Mapping

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
from prometheus_client.parser import text_string_to_metric_families

from ostiary.server.rate_limit import _client_auth_keys

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


Pair = tuple[OstiaryServer, OstiaryServer, str]


@pytest.fixture(params=["database", "redis"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """Two processes; a window no run of this test crosses (it starts at midnight UTC)."""
    yield from _two_processes(
        request.param,
        tmp_path_factory,
        {"OSTIARY_TOKEN_RATE_LIMIT": str(LIMIT), "OSTIARY_TOKEN_RATE_WINDOW": "86400"},
    )


FAST_WINDOW = 4  # seconds: long enough for a few requests, short enough to wait one out
FAST_LIMIT = 3
AUTH_FAILURES = 3
AUTH_BACKOFF = 30  # seconds: no wait runs out during the test


@pytest.fixture(params=["database", "redis"])
def fast_pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """Two processes with a short token window and a small client authentication budget."""
    yield from _two_processes(
        request.param,
        tmp_path_factory,
        {
            "OSTIARY_TOKEN_RATE_LIMIT": str(FAST_LIMIT),
            "OSTIARY_TOKEN_RATE_WINDOW": str(FAST_WINDOW),
            "OSTIARY_CLIENT_AUTH_MAX_FAILURES": str(AUTH_FAILURES),
            "OSTIARY_CLIENT_AUTH_BACKOFF": str(AUTH_BACKOFF),
            "OSTIARY_CLIENT_AUTH_BACKOFF_CAP": "600",
        },
    )


def _two_processes(
    kind: str, tmp_path_factory: pytest.TempPathFactory, limits: Mapping[str, str]
) -> Iterator[Pair]:
    reason = postgres_unreachable()
    if reason is None and kind == "redis":
        reason = redis_unreachable()
    if reason is not None:
        pytest.skip(f"{reason}; CI starts it (.ci/run)")
    folder = tmp_path_factory.mktemp(f"ostiary-limits-{kind}")
    with postgres_database() as url:
        settings = {
            "OSTIARY_DATABASE_URL": url,
            "OSTIARY_ISSUER": "http://127.0.0.1:1",
            "OSTIARY_RATE_LIMIT_SYNC_INTERVAL": str(SYNC_INTERVAL),
            **limits,
        }
        if kind == "redis":
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


def test_one_budget_per_client_over_two_processes(pair: Pair) -> None:
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


def test_failed_guesses_count_across_processes(pair: Pair) -> None:
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


def _sleep_to_next_window() -> None:
    now = time.time()
    time.sleep(FAST_WINDOW - now % FAST_WINDOW + 0.05)


def test_a_client_that_keeps_overrunning_waits_longer_at_both_processes(fast_pair: Pair) -> None:
    """Past its budget, a client waits for the window's end; past it again in the next
    window (at the other process), it waits two windows, and both processes say so."""
    first, second, _ = fast_pair
    client = first.create_client(name="Runaway", grant_types="client_credentials", scopes="r")
    auth = (client["client_id"], client["client_secret"])

    def overrun(process: OstiaryServer) -> httpx.Response:
        # Windows are aligned to the clock (the server's is ours): start just after a window
        # begins, so the budget's requests are all counted in one window even on a slow host.
        _sleep_to_next_window()
        for _ in range(FAST_LIMIT + 1):
            answer = httpx.post(
                f"{process.base_url}/token",
                data={"grant_type": "client_credentials"},
                auth=auth,
                timeout=10,
            )
            if answer.status_code == 429:
                return answer
            assert answer.status_code == 200, answer.text
        raise AssertionError("the budget was not enforced")

    refused = overrun(first)
    assert refused.json()["error"] == "slow_down"
    first_wait = int(refused.headers["retry-after"])
    assert 1 <= first_wait <= FAST_WINDOW
    again = overrun(second)  # honouring Retry-After: in the window right after the penalty
    second_wait = int(again.headers["retry-after"])
    # two windows from the start of the window it overran again: more than one window left
    assert FAST_WINDOW < second_wait <= 2 * FAST_WINDOW, second_wait
    deadline = time.monotonic() + SHARED
    while True:  # the first process learns the penalty at its next share
        answer = httpx.post(
            f"{first.base_url}/token",
            data={"grant_type": "client_credentials"},
            auth=auth,
            timeout=10,
        )
        if answer.status_code == 429 and int(answer.headers["retry-after"]) > FAST_WINDOW - 1:
            break
        assert time.monotonic() < deadline, "the other process never learnt the penalty"
        time.sleep(SYNC_INTERVAL)  # bounded polling: wait for the next share
    assert _rate_limited(first, "token") + _rate_limited(second, "token") >= 3


def test_failed_client_authentication_is_limited_per_address_at_both_processes(
    fast_pair: Pair,
) -> None:
    """Behind the proxy on 127.0.0.1 (trusted by default), the address is X-Forwarded-For's.
    Wrong secrets from one address lock that address out of that client at both processes;
    the same client from its own address goes on working. Fifty wrong secrets at once over
    both processes are each counted."""
    first, second, url = fast_pair
    client = first.create_client(name="Target", grant_types="client_credentials", scopes="r")
    client_id, secret = client["client_id"], client["client_secret"]

    def token(process: OstiaryServer, address: str, password: str) -> httpx.Response:
        return httpx.post(
            f"{process.base_url}/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, password),
            headers={"X-Forwarded-For": address},
            timeout=10,
        )

    attacker, home = "198.51.100.66", "192.0.2.10"
    for n in range(AUTH_FAILURES):
        wrong = token((first, second)[n % 2], attacker, f"wrong-{n}")
        assert wrong.status_code == 401, wrong.text
    refused = token(first, attacker, secret)  # the one that failed last knows at once
    assert (refused.status_code, refused.json()["error"]) == (429, "slow_down")
    # the wait runs from the failure: a second may have passed since (real clock)
    assert AUTH_BACKOFF - 2 <= int(refused.headers["retry-after"]) <= AUTH_BACKOFF
    time.sleep(3 * SYNC_INTERVAL)  # the other process refreshes within one interval
    refused = token(second, attacker, secret)
    assert refused.status_code == 429, refused.text
    for process in (first, second):
        assert token(process, home, secret).status_code == 200

    burst_from = "203.0.113.99"

    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as http:
            answers = await asyncio.gather(
                *(
                    http.post(
                        f"{(first, second)[n % 2].base_url}/token",
                        data={"grant_type": "client_credentials"},
                        auth=(client_id, f"wrong-{n}"),
                        headers={"X-Forwarded-For": burst_from},
                    )
                    for n in range(50)
                )
            )
        return [answer.status_code for answer in answers]

    statuses = asyncio.run(burst())
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) >= AUTH_FAILURES
    time.sleep(3 * SYNC_INTERVAL)
    for process in (first, second):
        assert token(process, burst_from, secret).status_code == 429
    if "OSTIARY_REDIS_URL" not in first.settings:
        # every failure that was checked is counted: none lost between the processes
        pair_key = _client_auth_keys(burst_from, client_id)[1]
        assert asyncio.run(_strikes(url, pair_key)) == statuses.count(401)
    refusals = _rate_limited(first, "client_auth") + _rate_limited(second, "client_auth")
    assert refusals == 2 + statuses.count(429) + 2


def _rate_limited(process: OstiaryServer, limit: str) -> float:
    text = httpx.get(f"{process.base_url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ostiary_rate_limited_total" and sample.labels["limit"] == limit:
                return float(sample.value)
    return 0.0


async def _strikes(url: str, key: str) -> int:
    connection = await asyncpg.connect(url.replace("postgresql://", "postgres://", 1))
    try:
        strikes: int = await connection.fetchval(
            "SELECT strikes FROM rate_penalties WHERE key = $1", key
        )
        return strikes
    finally:
        await connection.close()
