"""A real `ostiary serve` with a short OSTIARY_PURGE_INTERVAL removes expired rows of its
database on its own, keeps live ones, and says so in its log."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_server import (
    OstiaryServer,
    postgres_database,
    postgres_unreachable,
    start_server,
    stop_server,
)

from ostiary.oauth.models import IssuedAccessToken
from ostiary.server.purge import PURGE_GRACE
from ostiary.store import open_store

WAIT = 20.0  # seconds the test waits for the server's purge before it fails


@pytest.fixture(params=["sqlite", "postgresql"])
def purging_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OstiaryServer]:
    settings = {"OSTIARY_PURGE_INTERVAL": "1"}
    if request.param == "sqlite":
        server = start_server("sqlite", tmp_path, settings)
        try:
            yield server
        finally:
            stop_server(server)
        return
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(f"{reason}; CI starts it (.ci/run)")
    with postgres_database() as url:
        server = start_server("postgresql", tmp_path, settings | {"OSTIARY_DATABASE_URL": url})
        try:
            yield server
        finally:
            stop_server(server)


def database_url(server: OstiaryServer) -> str:
    return server.env.get("OSTIARY_DATABASE_URL", f"sqlite:///{server.folder / 'ostiary.db'}")


def access(token_id: str, client_id: str, expires_at: int) -> IssuedAccessToken:
    return IssuedAccessToken(
        token_id=token_id,
        format="opaque",
        client_id=client_id,
        grant_id=None,
        subject=client_id,
        scope=frozenset({"read"}),
        audience=("https://api.example",),
        issued_at=expires_at - 600,
        expires_at=expires_at,
        extra={},
    )


async def add_tokens(url: str, client_id: str) -> None:
    now = int(time.time())
    async with open_store(url, pool_size=1) as store:
        for i in range(5):
            await store.tokens.add_access(access(f"old-{i}", client_id, now - PURGE_GRACE - 5))
        await store.tokens.add_access(access("live", client_id, now + 600))


async def left(url: str) -> set[str]:
    names = {f"old-{i}" for i in range(5)} | {"live"}
    async with open_store(url, pool_size=1) as store:
        return {name for name in names if await store.tokens.find_access(name) is not None}


def test_a_running_server_purges_expired_rows_on_its_own(purging_server: OstiaryServer) -> None:
    server = purging_server
    client = server.create_client(name="Batch", grant_types="client_credentials", scopes="read")
    url = database_url(server)
    asyncio.run(add_tokens(url, client["client_id"]))
    deadline = time.monotonic() + WAIT
    while asyncio.run(left(url)) != {"live"}:
        assert time.monotonic() < deadline, f"no purge ran:\n{server.log_tail()}"
        assert server.process is not None and server.process.poll() is None, server.log_tail()
        time.sleep(0.2)  # bounded polling of a real server's background work
    # one round or several (a round may fall between two of the inserts): five in all
    removed = re.findall(r"purge: removed \d+ expired rows .*access_tokens=(\d+)", server.log())
    assert sum(int(count) for count in removed) == 5, server.log_tail()
