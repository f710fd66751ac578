"""One database, and the two ways the stores use it: `read(work)` and `write(work)`.

A unit of work is a plain function of a SQLAlchemy `Connection`, run whole in one go.

PostgreSQL (asyncpg) runs it on the event loop through `AsyncConnection.run_sync`. Writes
run at READ COMMITTED, where an `UPDATE ... WHERE <still live>` waits for a competing writer
and re-checks its condition on the committed row: that is the lock. Reads run in autocommit:
one round trip, not BEGIN/SELECT/ROLLBACK.

SQLite (the stdlib `sqlite3` driver, in WAL mode) runs it inline on the event loop: a unit of
work is tens of microseconds of page-cache work, less than a trip to a thread and back (an
async SQLite driver makes that trip for every statement and fetch, several times slower).
Inline work never waits: its connection has no busy timeout and never checkpoints. A write
takes SQLite's write lock as it begins (`BEGIN IMMEDIATE`), so a read-then-write never fails
half way; units of work on one event loop cannot interleave, so in one process writers never
meet. When another process holds the lock (SQLITE_BUSY), the unit of work is rolled back and
run again in the writer thread, which waits in SQLite's busy handler; so do bulk writes and,
every `CHECKPOINT_EVERY` commits, a WAL checkpoint (an fsync).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool, StaticPool

from ostiary.oauth.errors import DatabaseUnavailable

from ._urls import is_sqlite, is_sqlite_memory

T = TypeVar("T")
Work = Callable[[Connection], T]

BUSY_TIMEOUT_MS: Final = 15_000  # how long a SQLite writer waits for another process
CHECKPOINT_EVERY: Final = 500  # inline SQLite commits between WAL checkpoints
DEFAULT_TIMEOUT_S: Final = 5.0  # connect, wait for a pooled connection, run one statement
RETRY_AFTER_S: Final = 5  # what a 503 tells clients when the database is out of reach
_BEGIN: Final = "ostiary_sqlite_begin"  # execution option: the BEGIN statement to emit

Insert = postgresql.Insert | sqlite.Insert


class Database(Protocol):
    """`read(work)` and `write(work)` on SQLite or PostgreSQL; see the module docstring."""

    @property
    def is_postgresql(self) -> bool: ...

    async def read(self, work: Work[T]) -> T:
        """Run `work` with a connection that sees committed data."""

    async def write(self, work: Work[T], *, bulk: bool = False) -> T:
        """Run `work` in one transaction: committed if it returns, rolled back if it raises.

        `bulk`: work that may touch many rows (purges, cascades, migrations), which SQLite
        must not run on the event loop."""

    def insert(self, table: Table) -> Insert:
        """An INSERT that can say ON CONFLICT, in this database's dialect."""

    async def close(self) -> None: ...


class PostgresDatabase:
    is_postgresql = True

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def read(self, work: Work[T]) -> T:
        with reachable():
            async with self._reader.connect() as conn:
                return await conn.run_sync(work)

    async def write(self, work: Work[T], *, bulk: bool = False) -> T:
        # A write cut off before COMMIT was rolled back by PostgreSQL: nothing half-written.
        with reachable():
            async with self._engine.begin() as conn:
                return await conn.run_sync(work)

    def insert(self, table: Table) -> Insert:
        return postgresql.insert(table)

    async def close(self) -> None:
        await self._engine.dispose()


class SqliteDatabase:
    is_postgresql = False

    def __init__(self, engine: Engine, *, memory: bool) -> None:
        self._engine = engine
        self._memory = memory  # one connection is the whole database: all of it inline
        self._inline: Connection | None = None  # used on the event loop's thread only
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ostiary-sqlite-writer")
        self._writers = asyncio.Lock()  # held while a unit of work runs in the writer thread
        self._commits = 0  # inline commits since the last checkpoint was started
        self._checkpoint: Future[None] | None = None

    async def read(self, work: Work[T]) -> T:
        with reachable():
            return await self._read(work)

    async def write(self, work: Work[T], *, bulk: bool = False) -> T:
        with reachable():
            return await self._write_any(work, bulk=bulk)

    async def _read(self, work: Work[T]) -> T:
        conn = self._connection()
        try:
            return work(conn)
        except OperationalError as exc:
            if not _is_busy(exc):
                raise
        finally:
            conn.rollback()  # end the snapshot, so later reads see later commits
        return await self._in_thread(self._read_in_thread, work)

    async def _write_any(self, work: Work[T], *, bulk: bool) -> T:
        if self._memory:
            return self._write(self._connection(), work)
        if not bulk and not self._writers.locked():
            try:
                result = self._write(self._connection(), work)
            except OperationalError as exc:
                if not _is_busy(exc):
                    raise
            else:
                self._committed_inline()
                return result
        return await self._in_thread(self._write_in_thread, work)

    def insert(self, table: Table) -> Insert:
        return sqlite.insert(table)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._writer.shutdown)
        if self._inline is not None:
            self._inline.close()
        self._engine.dispose()

    def _connection(self) -> Connection:
        if self._inline is None or self._inline.invalidated or self._inline.closed:
            self._inline = self._engine.connect()
            raw: Any = self._inline.connection.driver_connection
            # Inline, never wait: SQLITE_BUSY sends the work to the writer thread instead.
            raw.execute("PRAGMA busy_timeout = 0")
            # Checkpoints (an fsync) run in the writer thread (`_committed_inline`).
            raw.execute("PRAGMA wal_autocheckpoint = 0")
        return self._inline

    async def _in_thread(self, run: Callable[[Work[T]], T], work: Work[T]) -> T:
        loop = asyncio.get_running_loop()
        async with self._writers:
            return await loop.run_in_executor(self._writer, run, work)

    def _read_in_thread(self, work: Work[T]) -> T:
        with self._engine.connect() as conn:
            return work(conn)

    def _write_in_thread(self, work: Work[T]) -> T:
        with self._engine.connect() as conn:
            return self._write(conn, work)

    @staticmethod
    def _write(conn: Connection, work: Work[T]) -> T:
        conn.execution_options(**{_BEGIN: "BEGIN IMMEDIATE"})
        try:
            with conn.begin():
                return work(conn)
        except BaseException:
            if not conn.invalidated:
                conn.rollback()
                # A failed COMMIT leaves SQLite's transaction open: never keep its lock.
                raw: Any = conn.connection.driver_connection
                if raw.in_transaction:
                    raw.rollback()
            raise
        finally:
            conn.execution_options(**{_BEGIN: "BEGIN"})  # the inline connection reads too

    def _committed_inline(self) -> None:
        self._commits += 1
        if self._commits < CHECKPOINT_EVERY:
            return
        if self._checkpoint is None or self._checkpoint.done():
            self._commits = 0
            self._checkpoint = self._writer.submit(self._run_checkpoint)

    def _run_checkpoint(self) -> None:
        # PASSIVE: copy what it can from the WAL into the file, waiting for no one.
        with self._engine.connect() as conn:
            raw: Any = conn.connection.driver_connection
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)")


# SQLite's OperationalError also means "no such table": only these say the file is out of
# reach (held by another process past the busy timeout, unreadable, disk full).
_SQLITE_UNAVAILABLE: Final = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_FULL,
    }
)


@contextlib.contextmanager
def reachable() -> Iterator[None]:
    """Turn "the database cannot be reached or did not answer in time" into the core's
    `DatabaseUnavailable`; every other database error (a constraint, a bug) passes."""
    try:
        yield
    except OperationalError as exc:
        code = getattr(exc.orig, "sqlite_errorcode", None)
        if code is not None and code & 0xFF not in _SQLITE_UNAVAILABLE:
            raise
        raise DatabaseUnavailable(
            "the server cannot reach its database; try again shortly",
            retry_after=RETRY_AFTER_S,
            detail=f"{type(exc).__name__}: {_first_line(exc)}",
        ) from exc
    except (InterfaceError, PoolTimeout, OSError, TimeoutError) as exc:
        raise DatabaseUnavailable(
            "the server cannot reach its database; try again shortly",
            retry_after=RETRY_AFTER_S,
            detail=f"{type(exc).__name__}: {_first_line(exc)}",
        ) from exc
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        raise DatabaseUnavailable(
            "the server lost its database connection; try again shortly",
            retry_after=RETRY_AFTER_S,
            detail=f"{type(exc).__name__}: {_first_line(exc)}",
        ) from exc


def _first_line(exc: BaseException) -> str:
    # The driver's message names the host and the failure, never a password or a parameter.
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[0][:200] if lines else type(cause).__name__


def _is_busy(exc: OperationalError) -> bool:
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


def pool_status(db: Database) -> dict[str, int]:
    """The connection pool right now: size, checked_out, checked_in, overflow (for metrics)."""
    pool = db._engine.pool if isinstance(db, PostgresDatabase | SqliteDatabase) else None
    if not isinstance(pool, QueuePool):  # in-memory SQLite: one static connection
        return {}
    return {
        "size": pool.size(),
        "checked_out": pool.checkedout(),
        "checked_in": pool.checkedin(),
        "overflow": max(0, pool.overflow()),
    }


def connect(
    url: URL,
    *,
    pool_size: int = 10,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Database:
    """A `Database` for a URL from `parse_database_url` (no I/O until first use).

    `timeout` (PostgreSQL) bounds each wait: connecting, waiting for a pooled connection and
    each statement; past it the operation raises `DatabaseUnavailable` instead of hanging."""
    if pool_size < 1:
        raise ValueError("pool_size must be at least 1")
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    if not is_sqlite(url):
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,  # N workers x pool_size is the whole connection budget
            pool_timeout=timeout,
            connect_args={
                "timeout": timeout,
                "command_timeout": timeout,
                "server_settings": {"application_name": "ostiary"},
            },
        )
        return PostgresDatabase(engine)
    sync_url = url.set(drivername="sqlite+pysqlite")
    # The writer thread's connection is made there and may be closed on the event loop.
    connect_args = {"check_same_thread": False}
    memory = is_sqlite_memory(url)
    if memory:
        sync_engine = create_engine(sync_url, poolclass=StaticPool, connect_args=connect_args)
    else:
        # One connection reads on the event loop, one writes in the writer thread.
        sync_engine = create_engine(
            sync_url, pool_size=2, max_overflow=0, connect_args=connect_args
        )
    on_connect = functools.partial(
        _on_sqlite_connect, busy_timeout_ms=busy_timeout_ms, wal=not memory
    )
    event.listen(sync_engine, "connect", on_connect)
    event.listen(sync_engine, "begin", _on_sqlite_begin)
    return SqliteDatabase(sync_engine, memory=memory)


def create_sqlite_file(url: URL) -> None:
    """Create the SQLite file readable by its owner only (it holds hashes and key material)."""
    if not is_sqlite(url) or is_sqlite_memory(url) or url.database is None:
        return  # a PostgreSQL database name is not a file
    path = Path(url.database)
    if not path.parent.is_dir():
        raise ValueError(f"the folder for the SQLite database does not exist: {path.parent}")
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def sqlite_file_exists(url: URL) -> bool:
    if not is_sqlite(url) or is_sqlite_memory(url):
        return True
    return url.database is not None and Path(url.database).is_file()


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
            # In WAL mode, NORMAL syncs at checkpoints rather than at every commit: the file
            # stays consistent after any crash, and a crash of the process loses nothing, but
            # an OS crash or power cut may undo the last commits. Without it every token
            # request waits for an fsync and SQLite, which has no group commit, caps at the
            # disk's fsync rate (some hundreds a second).
            cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN, "BEGIN"))
