"""The per-process client cache: a client changed or deleted by another process (another
connection pool here, as `ostiary clients delete` is) stops being served from the cache, and
nothing is served from it while changes could be missed. PostgreSQL learns of changes by
LISTEN/NOTIFY; SQLite by `PRAGMA data_version`, at once."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from store_databases import TABLES, copy_sqlite, truncate
from test_contract import make_access, make_client

from ostiary.store import SqlStore, open_store
from ostiary.store._clients import CLIENTS_CHANNEL

pytestmark = pytest.mark.anyio

WAIT_STEPS = 500  # x 10 ms: how long a notification may take on a loaded machine, at most


@pytest.fixture
def postgres_url(postgres_session_url: str) -> str:
    """A migrated, empty PostgreSQL database."""
    asyncio.run(truncate(postgres_session_url))
    return postgres_session_url


@pytest.fixture
async def server_and_operator(postgres_url: str) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    """Two stores on one database: the server's (which caches) and an operator's."""
    async with open_store(postgres_url) as server, open_store(postgres_url) as operator:
        yield server, operator


async def _listening(store: SqlStore) -> None:
    changes = store._db.changes(CLIENTS_CHANNEL)
    assert changes is not None
    changes.start()
    for _ in range(WAIT_STEPS):
        if changes.active:
            return
        await asyncio.sleep(0.01)
    pytest.fail("the store never started listening for client changes")


async def _until(condition: object, store: SqlStore, client_id: str) -> None:
    for _ in range(WAIT_STEPS):
        if (await store.clients.get(client_id)) == condition:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"the server still sees {client_id} as before the change")


async def test_lookups_are_served_from_the_cache(
    server_and_operator: tuple[SqlStore, SqlStore], postgres_url: str
) -> None:
    server, operator = server_and_operator
    await operator.clients.add(make_client())
    await _listening(server)
    client = await server.clients.get("c1")
    assert client is not None
    # A row changed behind the store's back (no NOTIFY): the cached client is what comes back,
    # which is how this test knows the cache is used at all.
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("UPDATE clients SET name = 'renamed' WHERE client_id = 'c1'")
    finally:
        await conn.close()
    assert await server.clients.get("c1") == client


async def test_client_deleted_by_another_process_is_gone(
    server_and_operator: tuple[SqlStore, SqlStore],
) -> None:
    server, operator = server_and_operator
    await operator.clients.add(make_client())
    await _listening(server)
    assert await server.clients.get("c1") is not None
    assert await operator.clients.delete("c1")
    await _until(None, server, "c1")


async def test_client_recreated_by_another_process_is_read_again(
    server_and_operator: tuple[SqlStore, SqlStore],
) -> None:
    server, operator = server_and_operator
    await operator.clients.add(make_client())
    await _listening(server)
    assert await server.clients.get("c1") is not None
    await operator.clients.delete("c1")
    recreated = dataclasses.replace(make_client(), name="second life")
    await operator.clients.add(recreated)
    await _until(recreated, server, "c1")


async def test_unknown_clients_are_never_cached(
    server_and_operator: tuple[SqlStore, SqlStore],
) -> None:
    server, operator = server_and_operator
    await _listening(server)
    assert await server.clients.get("c1") is None
    await operator.clients.add(make_client())
    assert await server.clients.get("c1") == make_client()


async def test_no_cache_while_the_listening_connection_is_down(
    server_and_operator: tuple[SqlStore, SqlStore], postgres_url: str
) -> None:
    server, operator = server_and_operator
    await operator.clients.add(make_client())
    await _listening(server)
    assert await server.clients.get("c1") is not None
    conn = await asyncpg.connect(postgres_url)
    try:
        # End the server's listening session, then delete the client without a NOTIFY:
        # a cache that kept serving now would serve a deleted client.
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
        await conn.execute(
            "; ".join(f'DELETE FROM "{name}"' for name in reversed(TABLES))  # noqa: S608
        )
    finally:
        await conn.close()
    await _until(None, server, "c1")
    # and once listening again, caching resumes
    await operator.clients.add(make_client())
    await _listening(server)
    assert await server.clients.get("c1") == make_client()


async def test_a_change_made_here_is_seen_here_at_once(
    server_and_operator: tuple[SqlStore, SqlStore],
) -> None:
    """No wait for the notification to come back: the writer's own cache forgets at once."""
    server, _ = server_and_operator
    await server.clients.add(make_client())
    await _listening(server)
    assert await server.clients.get("c1") is not None
    renamed = dataclasses.replace(make_client(), name="renamed")
    assert await server.clients.update(renamed)
    assert await server.clients.get("c1") == renamed
    assert await server.clients.delete("c1")
    assert await server.clients.get("c1") is None


# -- SQLite ------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_file(sqlite_template: Path, tmp_path: Path) -> Path:
    url = copy_sqlite(sqlite_template, tmp_path)
    return Path(url.removeprefix("sqlite:///"))


@pytest.fixture
async def sqlite_server_and_operator(
    sqlite_file: Path,
) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    url = f"sqlite:///{sqlite_file}"
    async with open_store(url) as server, open_store(url) as operator:
        yield server, operator


def _client_lookups(store: SqlStore) -> list[str]:
    """Every client lookup the store's event-loop connection runs from now on."""
    seen: list[str] = []
    raw = store._db._raw()  # type: ignore[union-attr]
    raw.set_trace_callback(
        lambda sql: seen.append(sql) if "FROM clients" in sql and "SELECT" in sql else None
    )
    return seen


async def test_sqlite_lookups_are_served_from_the_cache(
    sqlite_server_and_operator: tuple[SqlStore, SqlStore],
) -> None:
    server, operator = sqlite_server_and_operator
    await operator.clients.add(make_client())
    lookups = _client_lookups(server)
    for _ in range(5):
        assert await server.clients.get("c1") == make_client()
    assert len(lookups) == 1


async def test_sqlite_lookups_during_one_group_commit_read_the_data_version_once(
    sqlite_server_and_operator: tuple[SqlStore, SqlStore],
) -> None:
    """While a group commit is open, this connection holds SQLite's write lock and no other
    can commit: the data version read once then holds until the batch commits."""
    server, operator = sqlite_server_and_operator
    await operator.clients.add(make_client())
    assert await server.clients.get("c1") == make_client()
    pragmas: list[str] = []
    server._db._raw().set_trace_callback(  # type: ignore[union-attr]
        lambda sql: pragmas.append(sql) if "data_version" in sql else None
    )
    writing = asyncio.create_task(server.tokens.add_access(make_access("jti-in-the-batch")))
    await asyncio.sleep(0)  # the write runs up to its wait for the COMMIT at the turn's end
    assert server._db._batch is not None  # type: ignore[union-attr]
    for _ in range(5):
        assert await server.clients.get("c1") == make_client()
    assert len(pragmas) == 1
    await writing
    assert await server.clients.get("c1") == make_client()  # committed: read again
    assert len(pragmas) == 2
    renamed = dataclasses.replace(make_client(), name="renamed after the batch")
    assert await operator.clients.update(renamed)
    assert await server.clients.get("c1") == renamed


async def test_sqlite_client_changed_by_another_process_is_seen_at_once(
    sqlite_server_and_operator: tuple[SqlStore, SqlStore],
) -> None:
    server, operator = sqlite_server_and_operator
    await operator.clients.add(make_client())
    assert await server.clients.get("c1") == make_client()
    renamed = dataclasses.replace(make_client(), name="renamed")
    assert await operator.clients.update(renamed)
    assert await server.clients.get("c1") == renamed
    assert await operator.clients.delete("c1")
    assert await server.clients.get("c1") is None
    recreated = dataclasses.replace(make_client(), name="second life")
    await operator.clients.add(recreated)
    assert await server.clients.get("c1") == recreated


async def test_sqlite_change_made_outside_ostiary_is_seen_at_once(
    sqlite_server_and_operator: tuple[SqlStore, SqlStore], sqlite_file: Path
) -> None:
    """An operator's own SQL (the sqlite3 shell, a script) is noticed too: any commit by
    another connection moves the data version."""
    server, operator = sqlite_server_and_operator
    await operator.clients.add(make_client())
    assert await server.clients.get("c1") == make_client()
    conn = sqlite3.connect(sqlite_file)
    try:
        conn.execute("UPDATE clients SET name = 'edited by hand' WHERE client_id = 'c1'")
        conn.commit()
    finally:
        conn.close()
    found = await server.clients.get("c1")
    assert found is not None
    assert found.name == "edited by hand"


async def test_sqlite_change_made_here_is_seen_here_at_once(
    sqlite_server_and_operator: tuple[SqlStore, SqlStore],
) -> None:
    server, _ = sqlite_server_and_operator
    await server.clients.add(make_client())
    assert await server.clients.get("c1") == make_client()
    renamed = dataclasses.replace(make_client(), name="renamed")
    assert await server.clients.update(renamed)
    assert await server.clients.get("c1") == renamed
    assert await server.clients.delete("c1")  # a bulk write: the writer thread's connection
    assert await server.clients.get("c1") is None


async def test_sqlite_unknown_clients_are_never_cached(
    sqlite_server_and_operator: tuple[SqlStore, SqlStore],
) -> None:
    server, _operator = sqlite_server_and_operator
    lookups = _client_lookups(server)
    assert await server.clients.get("c1") is None
    assert await server.clients.get("c1") is None
    assert len(lookups) == 2
