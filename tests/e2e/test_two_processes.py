"""Two `ostiary serve` processes on one database, as N workers behind a load balancer run.

DESIGN.md: server processes keep no state of their own. So a code issued by one process
is redeemed at the other, a refresh token rotated at one is known as spent at the other,
and reuse at either revokes the family everywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from e2e_server import SCOPES, CallbackServer, OstiaryServer, Person, start_server, stop_server
from e2e_user_agent import Pkce, authorization_url, authorize, obtain_code

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
