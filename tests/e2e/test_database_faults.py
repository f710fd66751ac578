"""Faults: the database goes away, freezes, or a server process dies mid-load.

Each test runs `ostiary serve` against a PostgreSQL cluster of its own (`private_postgres`),
never the shared one, so it may stop and freeze it.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from e2e_server import CallbackServer, OstiaryServer, start_server, stop_server
from e2e_user_agent import obtain_code
from private_postgres import PrivatePostgres, missing_reason, private_postgres

from ostiary.oauth.token_hash import hash_token

DATABASE_TIMEOUT = 2  # OSTIARY_DATABASE_TIMEOUT for these servers
# A request may wait for a connect, a pooled connection, a statement and the rollback after
# it: each bounded by the timeout. Past this the server would be hanging.
NO_HANG = 4 * DATABASE_TIMEOUT + 5
RECOVERY = 30.0  # the server must answer again this soon after the database is back


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    reason = missing_reason()
    if reason is not None:
        pytest.skip(f"{reason}; CI has them (.ci/run)")
    with private_postgres() as made:
        yield made


@pytest.fixture
def faulty(
    cluster: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory, callback: CallbackServer
) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("ostiary-faults")
    settings = {
        "OSTIARY_DATABASE_URL": cluster.url,
        "OSTIARY_DATABASE_TIMEOUT": str(DATABASE_TIMEOUT),
    }
    server = start_server("postgresql", folder, settings)
    try:
        client = server.create_client(
            name="Fault Job",
            grant_types="authorization_code,refresh_token,client_credentials",
            redirect_uris=callback.redirect_uri,
            scopes="read",
            extra=("--token-format", "opaque"),
        )
        yield server, client
    finally:
        stop_server(server)
    assert "Traceback (most recent call last)" not in server.log(), server.log_tail()


def token(server: OstiaryServer, client: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
        timeout=kwargs.get("timeout", NO_HANG),
    )


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == "temporarily_unavailable"
    assert "Traceback" not in response.text


def wait_for_recovery(server: OstiaryServer, client: dict[str, Any]) -> httpx.Response:
    deadline = time.monotonic() + RECOVERY
    while True:
        response = token(server, client)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        assert_unavailable(response)
        time.sleep(0.2)  # bounded polling while the database comes back


def test_database_down_answers_503_then_recovers(
    cluster: PrivatePostgres, faulty: tuple[OstiaryServer, dict[str, Any]]
) -> None:
    server, client = faulty
    assert token(server, client).status_code == 200
    cluster.stop()
    try:
        assert_unavailable(token(server, client))
        # the pages answer 503 the same way, as a page
        page = httpx.get(
            f"{server.base_url}/authorize",
            params={"client_id": client["client_id"], "response_type": "code"},
            timeout=NO_HANG,
        )
        assert page.status_code == 503, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert "retry-after" in page.headers
    finally:
        cluster.start()
    recovered = wait_for_recovery(server, client)
    assert recovered.status_code == 200, recovered.text
    assert server.process is not None and server.process.poll() is None


def test_frozen_database_answers_503_within_the_timeout(
    cluster: PrivatePostgres, faulty: tuple[OstiaryServer, dict[str, Any]]
) -> None:
    server, client = faulty
    assert token(server, client).status_code == 200
    cluster.pause()  # connections stay open, nothing answers: the case a timeout is for
    try:
        # httpx gives up at NO_HANG: an answer before that means the server did not hang
        assert_unavailable(token(server, client))
    finally:
        cluster.resume()
    recovered = wait_for_recovery(server, client)
    assert recovered.status_code == 200, recovered.text


# -- SIGKILL in the middle of a load run ----------------------------------------------------

CREDENTIAL_WORKERS = 4
CHAINS = 3  # refresh-token families rotated over and over during the load
KILL_AFTER = 120  # successful responses before the server is killed


@dataclass
class LoadRecord:
    """Every 200 the load run saw: what the server promised is stored."""

    access_tokens: list[str] = field(default_factory=list)  # opaque: one row each
    refresh_tokens: dict[str, list[str]] = field(default_factory=dict)  # family -> rotated


async def _load_until_killed(
    server: OstiaryServer, client: dict[str, Any], chains: dict[str, str]
) -> LoadRecord:
    record = LoadRecord(refresh_tokens={family: [] for family in chains})
    auth = (client["client_id"], client["client_secret"])
    url = f"{server.base_url}/token"
    answered = 0
    enough = asyncio.Event()

    def count() -> None:
        nonlocal answered
        answered += 1
        if answered >= KILL_AFTER:
            enough.set()

    async def credentials(http: httpx.AsyncClient) -> None:
        while True:
            response = await http.post(url, data={"grant_type": "client_credentials"}, auth=auth)
            assert response.status_code == 200, response.text
            record.access_tokens.append(response.json()["access_token"])
            count()

    async def rotate(http: httpx.AsyncClient, family: str) -> None:
        current = chains[family]
        while True:
            form = {"grant_type": "refresh_token", "refresh_token": current}
            response = await http.post(url, data=form, auth=auth)
            assert response.status_code == 200, response.text
            current = response.json()["refresh_token"]
            record.refresh_tokens[family].append(current)
            count()

    async with httpx.AsyncClient(timeout=NO_HANG) as http:
        tasks = [asyncio.create_task(credentials(http)) for _ in range(CREDENTIAL_WORKERS)]
        tasks += [asyncio.create_task(rotate(http, family)) for family in chains]
        await asyncio.wait_for(enough.wait(), timeout=120)
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
        done, _ = await asyncio.wait(tasks, timeout=NO_HANG)
        assert len(done) == len(tasks), "requests to a killed server did not fail"
        for task in done:
            error = task.exception()
            assert isinstance(error, httpx.TransportError), repr(error)
    return record


def test_sigkill_mid_load_loses_no_committed_grant(
    cluster: PrivatePostgres,
    faulty: tuple[OstiaryServer, dict[str, Any]],
    callback: CallbackServer,
) -> None:
    server, client = faulty
    username, password = f"kill-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    server.create_user(username, password)
    chains: dict[str, str] = {}
    for _ in range(CHAINS):
        code, pkce = obtain_code(
            f"{server.base_url}/authorize",
            client_id=client["client_id"],
            redirect_uri=callback.redirect_uri,
            scope="read",
            username=username,
            password=password,
        )
        redeemed = httpx.post(
            f"{server.base_url}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": callback.redirect_uri,
                "code_verifier": pkce.verifier,
            },
            auth=(client["client_id"], client["client_secret"]),
            timeout=NO_HANG,
        )
        assert redeemed.status_code == 200, redeemed.text
        chains[f"chain-{len(chains)}"] = redeemed.json()["refresh_token"]

    record = asyncio.run(_load_until_killed(server, client, chains))
    assert server.process is not None
    assert server.process.wait(timeout=10) == -signal.SIGKILL

    rows = asyncio.run(_stored_rows(cluster.url, chains, record))
    # Every token the server answered with was committed before the answer...
    assert rows.missing_access == [], "issued access tokens lost"
    assert rows.missing_refresh == [], "rotated refresh tokens lost"
    # ...and no rotation is half done: each family has exactly one live refresh token (a
    # rotation marks the old one and stores its replacement in one transaction).
    assert rows.live_per_family == dict.fromkeys(rows.live_per_family, 1), rows.live_per_family

    # A restarted server honours what was issued before the kill.
    restarted = start_server("postgresql", server.folder, server.settings, name="restarted")
    try:
        for value in record.access_tokens[-10:]:
            answer = httpx.post(
                f"{restarted.base_url}/introspect",
                data={"token": value},
                auth=(client["client_id"], client["client_secret"]),
                timeout=NO_HANG,
            )
            assert answer.json()["active"] is True, answer.text
    finally:
        stop_server(restarted)
    assert "Traceback (most recent call last)" not in restarted.log(), restarted.log_tail()


@dataclass
class StoredRows:
    missing_access: list[str]
    missing_refresh: list[str]
    live_per_family: dict[str, int]


async def _stored_rows(url: str, chains: dict[str, str], record: LoadRecord) -> StoredRows:
    connection = await asyncpg.connect(url.replace("postgresql://", "postgres://", 1))
    try:
        access = {hash_token(value): value for value in record.access_tokens}
        found = await connection.fetch(
            "SELECT token_id FROM access_tokens WHERE token_id = ANY($1::text[])", list(access)
        )
        missing_access = sorted(set(access) - {row["token_id"] for row in found})
        chained = [value for values in record.refresh_tokens.values() for value in values]
        rotated = {hash_token(value): value for value in chained}
        found = await connection.fetch(
            "SELECT token_hash FROM refresh_tokens WHERE token_hash = ANY($1::text[])",
            list(rotated),
        )
        missing_refresh = sorted(set(rotated) - {row["token_hash"] for row in found})
        live: dict[str, int] = {}
        for family, first in chains.items():
            grant = await connection.fetchval(
                "SELECT grant_id FROM refresh_tokens WHERE token_hash = $1", hash_token(first)
            )
            live[family] = await connection.fetchval(
                "SELECT count(*) FROM refresh_tokens WHERE grant_id = $1 AND state = 'live'",
                grant,
            )
        return StoredRows(missing_access, missing_refresh, live)
    finally:
        await connection.close()
