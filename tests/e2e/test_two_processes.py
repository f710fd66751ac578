"""Two `ostiary serve` processes on one database, as N workers behind a load balancer run.

DESIGN.md: server processes keep no state of their own. So a code issued by one process
is redeemed at the other, a refresh token rotated at one is known as spent at the other,
and reuse at either revokes the family everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from e2e_server import SCOPES, CallbackServer, OstiaryServer, Person, start_server, stop_server
from e2e_user_agent import Pkce, authorization_url, authorize

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
