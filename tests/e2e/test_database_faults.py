"""Faults: the database goes away, freezes, or a server process dies mid-load.

Each test runs `ostiary serve` against a PostgreSQL cluster of its own (`private_postgres`),
never the shared one, so it may stop and freeze it.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from e2e_server import OstiaryServer, start_server, stop_server
from private_postgres import PrivatePostgres, missing_reason, private_postgres

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
def faulty(cluster: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("ostiary-faults")
    settings = {
        "OSTIARY_DATABASE_URL": cluster.url,
        "OSTIARY_DATABASE_TIMEOUT": str(DATABASE_TIMEOUT),
    }
    server = start_server("postgresql", folder, settings)
    try:
        client = server.create_client(
            name="Fault Job",
            grant_types="client_credentials",
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
