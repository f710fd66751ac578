"""One engine, and the two ways the stores use it: a read, or a write transaction.

SQLite (WAL, foreign keys on, a busy timeout) takes its write lock when a write transaction
begins (`BEGIN IMMEDIATE`), so a read-then-write never fails half way with SQLITE_BUSY; within
one process, writers also queue on an `asyncio.Lock` rather than spin in SQLite's busy handler.
PostgreSQL writes run at READ COMMITTED, where an `UPDATE ... WHERE <still live>` waits for a
competing writer and re-checks its condition on the committed row: that is the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from ._urls import is_sqlite, is_sqlite_memory

BUSY_TIMEOUT_MS: Final = 15_000  # how long a SQLite writer waits for another process
CONNECT_TIMEOUT_S: Final = 10.0
_BEGIN: Final = "ostiary_sqlite_begin"  # execution option: the BEGIN statement to emit

Insert = postgresql.Insert | sqlite.Insert


class Database:
    """An engine with `read()` and `write()` connections; see the module docstring."""

    def __init__(self, engine: AsyncEngine, url: URL) -> None:
        self.engine = engine
        self.is_sqlite = is_sqlite(url)
        self.is_postgresql = not self.is_sqlite
        # A `:memory:` database is one shared connection: every use takes turns.
        self._shared = is_sqlite_memory(url)
        self._turns = asyncio.Lock()
        # Reads need no transaction on PostgreSQL (one round trip instead of three).
        self._reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if self.is_postgresql else engine
        )

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        turn = self._turns if self._shared else contextlib.nullcontext()
        async with turn, self._reader.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits when the block ends and rolls back if it raises."""
        if self.is_postgresql:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._turns, self.engine.connect() as conn:
            await conn.execution_options(**{_BEGIN: "BEGIN IMMEDIATE"})
            async with conn.begin():
                yield conn

    def insert(self, table: Table) -> Insert:
        """An INSERT that can say ON CONFLICT, in this database's dialect."""
        return postgresql.insert(table) if self.is_postgresql else sqlite.insert(table)

    async def close(self) -> None:
        await self.engine.dispose()


def connect(url: URL, *, pool_size: int = 10, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Database:
    """A `Database` for a driver URL from `parse_database_url` (no I/O until first use)."""
    if pool_size < 1:
        raise ValueError("pool_size must be at least 1")
    if not is_sqlite(url):
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,  # N workers x pool_size is the whole connection budget
            connect_args={
                "timeout": CONNECT_TIMEOUT_S,
                "server_settings": {"application_name": "ostiary"},
            },
        )
        return Database(engine, url)
    memory = is_sqlite_memory(url)
    if memory:
        engine = create_async_engine(url, poolclass=StaticPool)
    else:
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=0)
    event.listen(
        engine.sync_engine,
        "connect",
        functools.partial(_on_sqlite_connect, busy_timeout_ms=busy_timeout_ms, wal=not memory),
    )
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    return Database(engine, url)


def create_sqlite_file(url: URL) -> None:
    """Create the SQLite file readable by its owner only (it holds hashes and key material)."""
    if is_sqlite_memory(url) or url.database is None:
        return
    path = Path(url.database)
    if not path.parent.is_dir():
        raise ValueError(f"the folder for the SQLite database does not exist: {path.parent}")
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def sqlite_file_exists(url: URL) -> bool:
    return is_sqlite_memory(url) or (url.database is not None and Path(url.database).is_file())


def _on_sqlite_connect(
    dbapi_connection: Any, _record: Any, *, busy_timeout_ms: int, wal: bool
) -> None:
    # SQLAlchemy emits BEGIN itself (`_on_sqlite_begin`): the sqlite3 module's own transaction
    # handling never begins before a SELECT and lets DDL escape the migration's transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if wal:
            # Readers never block the writer, nor the writer readers.
            cursor.execute("PRAGMA journal_mode = WAL")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN, "BEGIN"))
