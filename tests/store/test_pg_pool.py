"""`ConnectionPool` on a real PostgreSQL: bounded, lends only healthy connections, drops one
that a cancellation or a broken socket may have left half way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from ostiary.store._pg_pool import ConnectionPool

pytestmark = pytest.mark.anyio


@pytest.fixture
async def pool(postgres_session_url: str) -> AsyncIterator[tuple[ConnectionPool, list[Any]]]:
    """A pool of two, and every connection it ever opened."""
    opened: list[Any] = []

    async def connect() -> Any:
        conn = await asyncpg.connect(postgres_session_url, timeout=10)
        opened.append(conn)
        return conn

    pool = ConnectionPool(connect, size=2, server_errors=asyncpg.PostgresError, wait_timeout=10)
    yield pool, opened
    await pool.close()
    for conn in opened:
        conn.terminate()


async def _pid(pool: ConnectionPool) -> int:
    async with pool.connection() as conn:
        pid: int = await conn.fetchval("SELECT pg_backend_pid()")
        return pid


async def test_never_more_connections_than_its_size(
    pool: tuple[ConnectionPool, list[Any]],
) -> None:
    connections, opened = pool
    inside = 0
    most = 0

    async def hold() -> None:
        nonlocal inside, most
        async with connections.connection() as conn:
            inside += 1
            most = max(most, inside)
            await conn.fetchval("SELECT pg_sleep(0.01)")
            inside -= 1

    await asyncio.gather(*(hold() for _ in range(12)))
    assert most == 2
    assert len(opened) == 2


async def test_a_server_error_keeps_the_connection(
    pool: tuple[ConnectionPool, list[Any]],
) -> None:
    connections, opened = pool
    before = await _pid(connections)
    with pytest.raises(asyncpg.PostgresError):
        async with connections.connection() as conn:
            await conn.execute("SELECT no_such_column FROM pg_class")
    assert await _pid(connections) == before
    assert len(opened) == 1


async def test_a_cancelled_statement_drops_its_connection(
    pool: tuple[ConnectionPool, list[Any]], postgres_session_url: str
) -> None:
    connections, opened = pool
    before = await _pid(connections)

    async def slow() -> None:
        async with connections.connection() as conn:
            await conn.execute("SELECT pg_sleep(30)")

    task = asyncio.create_task(slow())
    admin = await asyncpg.connect(postgres_session_url, timeout=10)
    try:
        for _ in range(500):  # until the statement runs on the server
            running = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
                before,
            )
            if running:
                break
            await asyncio.sleep(0.01)
    finally:
        await admin.close()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert opened[0].is_closed()
    assert await _pid(connections) != before


async def test_a_connection_the_server_ended_is_not_lent(
    pool: tuple[ConnectionPool, list[Any]], postgres_session_url: str
) -> None:
    connections, _ = pool
    before = await _pid(connections)
    admin = await asyncpg.connect(postgres_session_url, timeout=10)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", before)
    finally:
        await admin.close()
    for _ in range(500):  # until the client has seen the socket close
        if all(c.is_closed() for c in pool[1]):
            break
        await asyncio.sleep(0.01)
    after = await _pid(connections)
    assert after != before


async def test_a_closed_pool_lends_nothing(pool: tuple[ConnectionPool, list[Any]]) -> None:
    connections, _ = pool
    await _pid(connections)
    await connections.close()
    with pytest.raises(ConnectionError, match="closed"):
        await _pid(connections)
