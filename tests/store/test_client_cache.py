"""The per-process client cache on PostgreSQL: a client changed or deleted by another
process (another connection pool here, as `ostiary clients delete` is) stops being served
from the cache, and nothing is served from it while changes could be missed."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import pytest
from store_databases import TABLES, truncate
from test_contract import make_client

from ostiary.store import SqlStore, open_store
from ostiary.store._clients import CLIENTS_CHANNEL

pytestmark = pytest.mark.anyio

WAIT_STEPS = 500  # x 10 ms: how long a notification may take on a loaded machine, at most


@pytest.fixture
def postgres_url(postgres_session_url: str) -> str:
    """A migrated, empty PostgreSQL database (SQLite lookups are not cached at all)."""
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
