"""The purge in the server: `OSTIARY_PURGE_INTERVAL` and its bad values, the background
`Purger` (jittered rounds, an INFO line and a counter, a failure that never stops it), and
through HTTP, a reused refresh token and a replayed code that still revoke after a purge."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from server_app import (
    ISSUER,
    REDIRECT_URI,
    Clock,
    Pkce,
    Served,
    authorize_url,
    make_settings,
    query_of,
    serve,
    sign_in_and_allow,
)

from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.models import Client, IssuedAccessToken
from ostiary.server import metrics
from ostiary.server.passwords import Argon2PasswordHasher
from ostiary.server.purge import PURGE_GRACE, Purger, purge_expired
from ostiary.server.settings import Settings
from ostiary.store import migrate, open_store

pytestmark = pytest.mark.anyio

WAIT = 10.0  # seconds a test waits for a background purge before it fails


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "greater than or equal to 0"),
        (0.5, "OSTIARY_PURGE_INTERVAL must be 0 (no purge in this process) or at least 1"),
        (8 * 24 * 3600, "less than or equal to 604800"),
        ("often", "valid number"),
    ],
)
def test_bad_purge_intervals_are_refused(value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Settings(purge_interval=value)


@pytest.mark.parametrize(("value", "expected"), [("0", 0.0), ("1", 1.0), ("300", 300.0)])
def test_purge_interval_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: float
) -> None:
    monkeypatch.setenv("OSTIARY_PURGE_INTERVAL", value)
    assert Settings().purge_interval == expected
    monkeypatch.delenv("OSTIARY_PURGE_INTERVAL")
    assert Settings().purge_interval == 300.0


def test_a_purger_needs_a_positive_interval() -> None:
    with pytest.raises(ValueError, match="interval"):
        Purger(MemoryStore(), interval=0, clock=Clock())


def access(token_id: str, client_id: str, expires_at: int) -> IssuedAccessToken:
    return IssuedAccessToken(
        token_id=token_id,
        format="opaque",
        client_id=client_id,
        grant_id=None,
        subject=client_id,
        scope=frozenset({"read"}),
        audience=(ISSUER,),
        issued_at=expires_at - 600,
        expires_at=expires_at,
        extra={},
    )


def purged_rows(table: str) -> float:
    for line in metrics.render().splitlines():
        if line.startswith(f'ostiary_purged_rows_total{{table="{table}"}} '):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_the_app_purges_in_the_background(
    backend: str, tmp_path: Path, clock: Clock, hasher: Argon2PasswordHasher
) -> None:
    settings = make_settings(tmp_path, issuer=ISSUER, database_url=backend, purge_interval=1)
    async with serve(settings, clock=clock, hasher=hasher) as served:
        client, _ = await served.add_client()
        now = clock()
        await served.store.tokens.add_access(access("old", client.client_id, now - PURGE_GRACE))
        await served.store.tokens.add_access(access("new", client.client_id, now + 600))
        # the first round comes within one interval: poll for it, bounded
        deadline = asyncio.get_running_loop().time() + WAIT
        while await served.store.tokens.find_access("old") is not None:
            assert asyncio.get_running_loop().time() < deadline, "no purge ran"
            await asyncio.sleep(0.05)
        assert await served.store.tokens.find_access("new") is not None


async def test_a_round_reports_its_counts_and_a_failure_never_stops_the_purger(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'purge.db'}"
    await migrate(url)
    async with open_store(url) as store:
        await store.clients.add(
            Client(
                client_id="c1",
                name="App",
                auth_method="none",
                secret_hash=None,
                redirect_uris=(REDIRECT_URI,),
                grant_types=frozenset({"client_credentials"}),
                scopes=frozenset({"read"}),
                created_at=clock(),
            )
        )
        await store.tokens.add_access(access("gone-1", "c1", clock() - PURGE_GRACE))
        await store.tokens.add_access(access("gone-2", "c1", clock() - PURGE_GRACE - 1))
        purger = Purger(store, interval=0.01, clock=clock, rng=random.Random(7))
        before = purged_rows("access_tokens")
        with caplog.at_level(logging.INFO, logger="ostiary.server"):
            done = await purger.run_once()
        assert done is not None and done.counts["access_tokens"] == 2
        assert purged_rows("access_tokens") - before == 2
        assert "purge: removed 2 expired rows" in caplog.text
        assert "access_tokens=2" in caplog.text

        # a table that went missing: the round fails, says so without SQL, and the loop
        # carries on to the next round
        with sqlite3.connect(tmp_path / "purge.db") as raw:
            raw.execute("ALTER TABLE replay_entries RENAME TO replay_entries_away")
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ostiary.server"):
            assert await purger.run_once() is None
            running = asyncio.get_running_loop().create_task(purger.run())
            deadline = asyncio.get_running_loop().time() + WAIT
            while caplog.text.count("purge failed") < 3:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.01)
            assert not running.done()
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
        assert "trying again next round: OperationalError" in caplog.text
        assert "DELETE" not in caplog.text and "SELECT" not in caplog.text


async def redeem(served: Served, auth: tuple[str, str], username: str) -> dict[str, str]:
    client_id = auth[0]
    client = await served.store.clients.get(client_id)
    assert client is not None
    pkce = Pkce.new()
    final = await sign_in_and_allow(served.http, authorize_url(client, pkce), username)
    code = query_of(final.headers["location"])["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce.verifier,
    }
    response = await served.http.post("/token", data=form, auth=auth)
    assert response.status_code == 200, response.text
    return form | {"refresh_token": response.json()["refresh_token"]}


async def refresh(served: Served, auth: tuple[str, str], token: str) -> httpx.Response:
    return await served.http.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": token}, auth=auth
    )


@pytest.fixture
async def short_lived(
    backend: str, tmp_path: Path, clock: Clock, hasher: Argon2PasswordHasher
) -> AsyncIterator[Served]:
    """The app with refresh tokens of an hour, so a test outlives a few of them."""
    settings = make_settings(tmp_path, issuer=ISSUER, database_url=backend, refresh_token_ttl=3600)
    async with serve(settings, clock=clock, hasher=hasher) as served:
        yield served


async def test_reusing_a_rotated_token_purged_in_its_own_right_still_revokes_the_family(
    short_lived: Served,
) -> None:
    served, clock = short_lived, short_lived.clock
    client, secret = await served.add_client()
    user = await served.add_user()
    auth = (client.client_id, secret or "")
    first = (await redeem(served, auth, user.username))["refresh_token"]
    clock.advance(3000)
    second = (await refresh(served, auth, first)).json()["refresh_token"]
    clock.advance(3000)
    third = await refresh(served, auth, second)
    assert third.status_code == 200
    # `first` expired an hour after it was issued, long enough ago for any purge
    clock.advance(1000)  # `second` has expired too, `third` lives
    purged = await purge_expired(served.store, now=clock())
    assert purged.counts["refresh_tokens"] == 0  # its family lives: nothing of it goes

    reuse = await refresh(served, auth, first)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    family = await refresh(served, auth, third.json()["refresh_token"])
    assert family.status_code == 400, "the live family was not revoked by the reuse"


async def test_replaying_a_code_after_a_purge_still_revokes_what_it_issued(
    short_lived: Served,
) -> None:
    served, clock = short_lived, short_lived.clock
    client, secret = await served.add_client()
    user = await served.add_user()
    auth = (client.client_id, secret or "")
    redeemed = await redeem(served, auth, user.username)
    # the code and its access token expired long ago; its refresh token lives
    clock.advance(600 + PURGE_GRACE + 60)
    purged = await purge_expired(served.store, now=clock())
    assert purged.counts["access_tokens"] == 1
    assert purged.counts["authorization_codes"] == 0

    form = {key: value for key, value in redeemed.items() if key != "refresh_token"}
    replay = await served.http.post("/token", data=form, auth=auth)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    after = await refresh(served, auth, redeemed["refresh_token"])
    assert after.status_code == 400, "the replayed code did not revoke its refresh token"

    # once its tokens have all expired, the code has nothing left to revoke: it goes
    clock.advance(3600 + PURGE_GRACE)
    assert (await purge_expired(served.store, now=clock())).counts["authorization_codes"] == 1
