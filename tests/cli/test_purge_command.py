"""`ostiary purge` on the server's database (SQLite by default, PostgreSQL through
OSTIARY_DATABASE_URL): the rows removed by table, as text or JSON, and bad input refused in
one line."""

from __future__ import annotations

import json
import time

import pytest
from cli_databases import in_store
from cli_run import Run, assert_one_line_error

from ostiary.oauth.models import PURGED_TABLES, Client, IssuedAccessToken
from ostiary.oauth.store import Store
from ostiary.server.purge import PURGE_GRACE

pytestmark = pytest.mark.usefixtures("working_folder")


def access(token_id: str, expires_at: int) -> IssuedAccessToken:
    return IssuedAccessToken(
        token_id=token_id,
        format="opaque",
        client_id="c1",
        grant_id=None,
        subject="c1",
        scope=frozenset({"read"}),
        audience=("https://api.example",),
        issued_at=expires_at - 600,
        expires_at=expires_at,
        extra={},
    )


def seed(url: str) -> None:
    now = int(time.time())

    async def add(store: Store) -> None:
        await store.clients.add(
            Client(
                client_id="c1",
                name="App",
                auth_method="none",
                secret_hash=None,
                redirect_uris=("https://app.example/cb",),
                grant_types=frozenset({"client_credentials"}),
                scopes=frozenset({"read"}),
                created_at=now,
            )
        )
        for i in range(3):
            await store.tokens.add_access(access(f"old-{i}", now - PURGE_GRACE - 60))
        await store.tokens.add_access(access("live", now + 600))
        await store.tokens.revoke_access("gone", expires_at=now - PURGE_GRACE - 60, now=now)
        assert await store.replay.first_use("jti", expires_at=now - PURGE_GRACE - 60, now=now)

    in_store(url, add)


def remaining(url: str) -> list[str]:
    async def find(store: Store) -> list[str]:
        names = ["old-0", "old-1", "old-2", "live"]
        return [name for name in names if await store.tokens.find_access(name) is not None]

    return in_store(url, find)


def test_purge_prints_the_rows_removed_by_table(ostiary: Run, database_url: str) -> None:
    assert ostiary("migrate").status == 0
    seed(database_url)
    result = ostiary("purge")
    assert result.status == 0, result
    lines = dict(line.rsplit(None, 1) for line in result.out.splitlines())
    assert list(lines) == [*PURGED_TABLES, "total"]
    assert lines["access_tokens"] == "3"
    assert lines["revoked_access_tokens"] == "1"
    assert lines["replay_entries"] == "1"
    assert lines["total"] == "5"
    assert remaining(database_url) == ["live"]


def test_purge_json_and_a_second_run_removes_nothing(ostiary: Run, database_url: str) -> None:
    assert ostiary("migrate").status == 0
    seed(database_url)
    first = json.loads(ostiary("purge", "--json", "--batch", "2").out)
    assert first["total"] == 5 and first["complete"] is True
    assert first["removed"] == dict.fromkeys(PURGED_TABLES, 0) | {
        "access_tokens": 3,
        "revoked_access_tokens": 1,
        "replay_entries": 1,
    }
    second = json.loads(ostiary("purge", "--json").out)
    assert second["total"] == 0
    assert remaining(database_url) == ["live"]


@pytest.mark.parametrize("batch", ["0", "-5", "10001", "many", ""])
def test_bad_batch_is_a_usage_error(ostiary: Run, batch: str) -> None:
    result = ostiary("purge", "--batch", batch)
    assert result.status == 2
    assert "--batch" in result.err and "Traceback" not in result.err


def test_no_database_yet_says_to_migrate(ostiary: Run) -> None:
    assert_one_line_error(ostiary("purge"), "run `ostiary migrate` first")


def test_unreachable_database_is_one_line(ostiary: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSTIARY_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("OSTIARY_DATABASE_TIMEOUT", "2")
    assert_one_line_error(ostiary("purge"), "cannot use the database")


def test_a_bad_purge_interval_is_refused_by_every_command(
    ostiary: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OSTIARY_PURGE_INTERVAL", "0.5")
    assert_one_line_error(ostiary("purge"), "OSTIARY_PURGE_INTERVAL must be 0")
