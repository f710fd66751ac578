"""Two `ostiary serve` processes on one database, as N workers behind a load balancer run.

DESIGN.md: server processes keep no state of their own. So a code issued by one process
is redeemed at the other, a refresh token rotated at one is known as spent at the other,
and reuse at either revokes the family everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from e2e_server import (
    SCOPES,
    CallbackServer,
    OstiaryServer,
    Person,
    postgres_database,
    postgres_unreachable,
    start_server,
    stop_server,
)
from e2e_user_agent import Pkce, authorization_url, authorize, obtain_code

from ostiary.jose import jwt

TIMEOUT = 10


@pytest.fixture
def twin(server: OstiaryServer) -> Iterator[OstiaryServer]:
    """A second process on the same folder, database and key secret, with the same issuer."""
    settings = server.settings | {"OSTIARY_ISSUER": server.issuer}
    twin = start_server(server.backend, server.folder, settings, name="twin")
    try:
        yield twin
    finally:
        stop_server(twin)
    assert "Traceback (most recent call last)" not in twin.log(), twin.log_tail()


def at(process: OstiaryServer, endpoint: str) -> str:
    """`endpoint` (from the shared issuer's metadata) on this process's own port."""
    return process.base_url + urlsplit(endpoint).path


def token_request(url: str, client: dict[str, Any], **data: str) -> httpx.Response:
    auth = (client["client_id"], client["client_secret"])  # client_secret_basic
    return httpx.post(url, data=data, auth=auth, timeout=TIMEOUT)


def refresh(
    process: OstiaryServer, token: str, client: dict[str, Any], refresh_token: str
) -> httpx.Response:
    return token_request(
        at(process, token), client, grant_type="refresh_token", refresh_token=refresh_token
    )


def test_state_is_shared_between_processes(
    server: OstiaryServer,
    twin: OstiaryServer,
    confidential_client: dict[str, Any],
    callback: CallbackServer,
    regular_person: Person,
) -> None:
    assert twin.metadata()["issuer"] == server.issuer
    jwks_uri = server.metadata()["jwks_uri"]
    jwks = [httpx.get(at(p, jwks_uri), timeout=TIMEOUT).json() for p in (server, twin)]
    assert jwks[0] == jwks[1]

    # Log in and consent at the first process...
    pkce = Pkce.new()
    url = authorization_url(
        at(server, server.endpoint("authorization")),
        client_id=confidential_client["client_id"],
        redirect_uri=callback.redirect_uri,
        scope=SCOPES,
        state="twin",
        pkce=pkce,
    )
    with httpx.Client(timeout=TIMEOUT) as user_agent:
        journey = authorize(
            user_agent,
            url,
            redirect_uri=callback.redirect_uri,
            username=regular_person.username,
            password=regular_person.password,
        )
    assert journey.callback_url is not None, [page.text for page in journey.pages]
    code = dict(httpx.URL(journey.callback_url).params)["code"]

    # ...redeem the code at the second, and refresh there.
    token = server.endpoint("token")
    first = token_request(
        at(twin, token),
        confidential_client,
        grant_type="authorization_code",
        code=code,
        redirect_uri=callback.redirect_uri,
        code_verifier=pkce.verifier,
    )
    assert first.status_code == 200, first.text
    old_refresh = first.json()["refresh_token"]
    second = refresh(twin, token, confidential_client, old_refresh)
    assert second.status_code == 200, second.text
    server.access_token_claims(second.json()["access_token"])

    # The first process knows the old refresh token is spent: reuse revokes the family,
    # so the second process refuses the new one as well.
    reused = refresh(server, token, confidential_client, old_refresh)
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    dead = refresh(twin, token, confidential_client, second.json()["refresh_token"])
    assert (dead.status_code, dead.json()["error"]) == (400, "invalid_grant")


# -- races: many redemptions of one code, many refreshes of one token ----------------------

RACERS = 50


@pytest.fixture
def processes(server: OstiaryServer) -> Iterator[list[OstiaryServer]]:
    """PostgreSQL: two processes on one database; SQLite: the one process it is made for."""
    if server.backend == "sqlite":
        yield [server]
        return
    settings = server.settings | {"OSTIARY_ISSUER": server.issuer}
    twin = start_server(server.backend, server.folder, settings, name="racer")
    try:
        yield [server, twin]
    finally:
        stop_server(twin)
    assert "Traceback (most recent call last)" not in twin.log(), twin.log_tail()


def race(
    processes: list[OstiaryServer], client: dict[str, Any], form: dict[str, str]
) -> list[httpx.Response]:
    """`RACERS` identical token requests at once, spread over the processes in turn."""
    token = processes[0].endpoint("token")
    auth = (client["client_id"], client["client_secret"])

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=RACERS)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:
            start = asyncio.Event()

            async def one(i: int) -> httpx.Response:
                await start.wait()
                return await http.post(
                    at(processes[i % len(processes)], token), data=form, auth=auth
                )

            tasks = [asyncio.create_task(one(i)) for i in range(RACERS)]
            await asyncio.sleep(0)  # every request waits at the start line
            start.set()
            return list(await asyncio.gather(*tasks))

    return asyncio.run(run())


def assert_one_winner(responses: list[httpx.Response]) -> dict[str, Any]:
    outcomes = [(r.status_code, r.json().get("error")) for r in responses]
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, outcomes
    assert outcomes.count((400, "invalid_grant")) == RACERS - 1, outcomes
    body: dict[str, Any] = winners[0].json()
    return body


def assert_family_revoked(
    processes: list[OstiaryServer], client: dict[str, Any], won: dict[str, Any]
) -> None:
    token = processes[0].endpoint("token")
    for process in processes:
        dead = refresh(process, token, client, won["refresh_token"])
        assert (dead.status_code, dead.json()["error"]) == (400, "invalid_grant")
        introspected = token_request(
            at(process, processes[0].endpoint("introspection")),
            client,
            token=won["access_token"],
        )
        assert introspected.json() == {"active": False}


def test_racing_redemptions_of_one_code(
    server: OstiaryServer,
    processes: list[OstiaryServer],
    confidential_client: dict[str, Any],
    callback: CallbackServer,
    regular_person: Person,
) -> None:
    code, pkce = obtain_code(
        at(server, server.endpoint("authorization")),
        client_id=confidential_client["client_id"],
        redirect_uri=callback.redirect_uri,
        scope=SCOPES,
        username=regular_person.username,
        password=regular_person.password,
    )
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": callback.redirect_uri,
        "code_verifier": pkce.verifier,
    }
    won = assert_one_winner(race(processes, confidential_client, form))
    # RFC 6749 §4.1.2: a code redeemed more than once revokes what it issued
    assert_family_revoked(processes, confidential_client, won)


def test_racing_refreshes_of_one_token(
    server: OstiaryServer,
    processes: list[OstiaryServer],
    confidential_client: dict[str, Any],
    callback: CallbackServer,
    regular_person: Person,
) -> None:
    code, pkce = obtain_code(
        at(server, server.endpoint("authorization")),
        client_id=confidential_client["client_id"],
        redirect_uri=callback.redirect_uri,
        scope=SCOPES,
        username=regular_person.username,
        password=regular_person.password,
    )
    first = token_request(
        at(server, server.endpoint("token")),
        confidential_client,
        grant_type="authorization_code",
        code=code,
        redirect_uri=callback.redirect_uri,
        code_verifier=pkce.verifier,
    )
    assert first.status_code == 200, first.text
    form = {"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]}
    won = assert_one_winner(race(processes, confidential_client, form))
    # RFC 9700 §4.14.2: reuse of a rotated refresh token revokes the whole family
    assert_family_revoked(processes, confidential_client, won)


# -- `--workers`, and a key rotation reaching every process --------------------------------

KEY_REFRESH_INTERVAL = 1  # OSTIARY_KEY_REFRESH_INTERVAL of these servers
ROTATION_BOUND = 10 * KEY_REFRESH_INTERVAL + 5  # generous: the machine is shared


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                if int(stat.rpartition(")")[2].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def signing_kid(process: OstiaryServer, client: dict[str, Any]) -> str:
    issued = token_request(
        f"{process.base_url}/token", client, grant_type="client_credentials", scope="read"
    )
    assert issued.status_code == 200, issued.text
    kid: str = jwt.unverified_header(issued.json()["access_token"])["kid"]
    return kid


def published_kids(process: OstiaryServer) -> set[str]:
    keys = httpx.get(f"{process.base_url}/jwks.json", timeout=TIMEOUT).json()["keys"]
    return {key["kid"] for key in keys}


def test_workers_and_a_second_process_follow_a_key_rotation(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(f"{reason}; CI starts it (.ci/run)")
    folder = tmp_path_factory.mktemp("ostiary-rotation")
    with postgres_database() as url:
        settings = {
            "OSTIARY_DATABASE_URL": url,
            "OSTIARY_KEY_REFRESH_INTERVAL": str(KEY_REFRESH_INTERVAL),
            "OSTIARY_ISSUER": "http://127.0.0.1:1",  # one issuer for both, as behind a proxy
        }
        pool = start_server("postgresql", folder, settings, name="workers", args=["--workers", "2"])
        single = None
        try:
            assert pool.process is not None
            assert len(children(pool.process.pid)) >= 2, pool.log_tail()
            single = start_server("postgresql", folder, settings, name="single")
            client = single.create_client(
                name="Rotation Job", grant_types="client_credentials", scopes="read"
            )
            old = {signing_kid(p, client) for p in (pool, single)}
            assert len(old) == 1, old

            rotated = single.ostiary("keys", "rotate", "--overlap", "0", "--json")
            assert rotated.returncode == 0, rotated.stderr
            new = json.loads(rotated.stdout)["kid"]

            # every process publishes and signs with the new key within the refresh interval
            deadline = time.monotonic() + ROTATION_BOUND
            pending = {"pool", "single"}
            while pending and time.monotonic() < deadline:
                for label, process in (("pool", pool), ("single", single)):
                    kids = {signing_kid(process, client) for _ in range(4)}  # both workers
                    if kids == {new} and new in published_kids(process):
                        pending.discard(label)
                time.sleep(0.2)  # bounded polling: the bound is the point of the test
            assert not pending, f"still signing with the old key: {pending}"
        finally:
            if single is not None:
                stop_server(single)
            stop_server(pool)
        assert pool.process is not None and pool.process.returncode == 0, pool.log_tail()
        assert children(pool.process.pid) == []
        for process in (pool, single):
            assert process is not None
            assert "Traceback (most recent call last)" not in process.log(), process.log_tail()
