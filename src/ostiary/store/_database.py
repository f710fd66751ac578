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
from collections.abc import Callable, Coroutine, Hashable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool, StaticPool

from ostiary.oauth.errors import DatabaseUnavailable

from ._fast import BatchInsert, BatchLookup, BatchStatement, FastStatement
from ._notifications import ChangeFeed, Changes, DataVersion
from ._pg_pool import ConnectionPool
from ._urls import is_sqlite, is_sqlite_memory

T = TypeVar("T")
Work = Callable[[Connection], T]

BUSY_TIMEOUT_MS: Final = 15_000  # how long a SQLite writer waits for another process
CHECKPOINT_EVERY: Final = 500  # inline SQLite commits between WAL checkpoints
# A WAL this long (64 MiB of 4 KiB pages) is started over at the next checkpoint (see
# `_checkpoint_wal`), and SQLite truncates the file back to this size when it starts over.
WAL_RESTART_FRAMES: Final = 16_384
WAL_TAIL_FRAMES: Final = 1_024  # copied while inline writes wait (a few milliseconds)
CATCH_UP_PASSES: Final = 4  # checkpoints beside the writes before the tail is copied anyway
WAL_SIZE_LIMIT: Final = 64 * 1024 * 1024
DEFAULT_TIMEOUT_S: Final = 5.0  # connect, wait for a pooled connection, run one statement
RETRY_AFTER_S: Final = 5  # what a 503 tells clients when the database is out of reach
_BEGIN: Final = "ostiary_sqlite_begin"  # execution option: the BEGIN statement to emit

Insert = postgresql.Insert | sqlite.Insert
Row = dict[str, Any]


class FastConnection(Protocol):
    """The driver's own connection inside `Database.fast_write`, for `FastStatement`s."""

    async def one(self, statement: FastStatement, params: Mapping[str, Any]) -> Row | None:
        """Run the statement; its first row (by column name), or None."""

    async def run(self, statement: FastStatement, params: Mapping[str, Any]) -> None: ...


FastWork = Callable[[FastConnection], Coroutine[Any, Any, T]]


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

    async def fast_read(self, statement: FastStatement, params: Mapping[str, Any]) -> Row | None:
        """`read` for one hot statement on the driver's own connection (see `_fast.py`)."""

    async def fast_lookup(self, statement: BatchLookup, key: str) -> Row | None:
        """`fast_read` of the row with this key. The lookups of one statement made in the
        same turn of the event loop may share a statement (one round trip for all)."""

    async def fast_batch(self, statement: BatchStatement, params: Mapping[str, Any]) -> Row | None:
        """`fast_execute` of `statement.one`, whose calls made in the same turn of the event
        loop may share one statement (one round trip, one transaction); a call that cannot
        be done still fails alone."""

    async def fast_execute(self, statement: FastStatement, params: Mapping[str, Any]) -> Row | None:
        """One hot statement that writes, committed on its own; its first row, or None.

        A constraint violation is SQLAlchemy's `IntegrityError`, as from `write`."""

    async def fast_write(self, work: FastWork[T]) -> T:
        """`write` for hot statements: `work` runs in one transaction on the driver's own
        connection. On SQLite `work` must not wait for anything but its statements."""

    async def fast_insert(self, statement: BatchInsert, params: Mapping[str, Any]) -> None:
        """Insert one row, committed when this returns. The rows of one statement written
        in the same turn of the event loop may share a statement and a transaction; a row
        that cannot be stored still fails alone (`IntegrityError`)."""

    def changes(self, channel: str) -> ChangeFeed:
        """How this process learns of changes other processes make (`_notifications.py`)."""

    async def close(self) -> None: ...


class PostgresDatabase:
    is_postgresql = True

    def __init__(self, engine: AsyncEngine, *, pool_size: int, timeout: float) -> None:
        self._engine = engine
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._pool_size = pool_size
        self._timeout = timeout
        self._fast_pool: ConnectionPool | None = None
        self._changes: dict[str, Changes] = {}
        # what waits for the end of this turn of the event loop, by statement (`_this_turn`)
        self._turn: dict[Hashable, list[tuple[Any, asyncio.Future[Any]]]] = {}
        self._sending: set[asyncio.Task[None]] = set()  # the turns' statements on their way

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

    async def fast_read(self, statement: FastStatement, params: Mapping[str, Any]) -> Row | None:
        return await self.fast_execute(statement, params)

    async def fast_execute(self, statement: FastStatement, params: Mapping[str, Any]) -> Row | None:
        # One statement outside BEGIN/COMMIT is its own transaction: one round trip, not three.
        form = statement.postgresql
        try:
            async with self._pool().connection() as conn:
                row = await conn.fetchrow(form.sql, *statement.args(form, params))
        except Exception as exc:
            translated = _pg_error(exc, form.sql)
            if translated is exc:
                raise
            raise translated from exc
        return None if row is None else statement.mapping(tuple(row))

    async def _this_turn(
        self,
        statement: Hashable,
        item: Any,
        send: Callable[[list[tuple[Any, asyncio.Future[Any]]]], Coroutine[Any, Any, None]],
    ) -> Any:
        """Under load many requests send the same statement in one turn of the event loop:
        `item` waits with the others of `statement` for the end of the turn, when `send`
        sends them all at once (one round trip, not one each) and answers each future."""
        loop = asyncio.get_running_loop()
        pending = self._turn.get(statement)
        if pending is None:
            pending = self._turn[statement] = []
            loop.call_soon(self._end_turn, statement, send)
        answer: asyncio.Future[Any] = loop.create_future()
        pending.append((item, answer))
        return await answer

    def _end_turn(
        self,
        statement: Hashable,
        send: Callable[[list[tuple[Any, asyncio.Future[Any]]]], Coroutine[Any, Any, None]],
    ) -> None:
        task = asyncio.get_running_loop().create_task(send(self._turn.pop(statement, [])))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def fast_lookup(self, statement: BatchLookup, key: str) -> Row | None:
        # Refresh tokens peeked at: one SELECT ... = ANY($1) a turn.
        row: Row | None = await self._this_turn(
            statement, key, functools.partial(self._lookup, statement)
        )
        return row

    async def _lookup(
        self, statement: BatchLookup, pending: list[tuple[str, asyncio.Future[Any]]]
    ) -> None:
        keys = list(dict.fromkeys(key for key, _ in pending))  # a key asked twice, read once
        try:
            if len(keys) == 1:
                row = await self.fast_execute(statement.one, {statement.param: keys[0]})
                rows = {} if row is None else {keys[0]: row}
            else:
                rows = await self._lookup_many(statement, keys)
        except Exception as exc:
            for _, found in pending:
                _fail(found, exc)
            return
        for key, found in pending:
            row = rows.get(key)
            _answer(found, None if row is None else dict(row))  # a row of its own each

    async def _lookup_many(self, statement: BatchLookup, keys: list[str]) -> dict[str, Row]:
        rows = await self._fetch_all(statement.many, keys)
        return {statement.key_of(row): statement.one.mapping(row) for row in rows}

    async def _fetch_all(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Every row of one statement of the token path, its errors as `fast_execute`'s."""
        try:
            async with self._pool().connection() as conn:
                records = await conn.fetch(sql, *args)
        except Exception as exc:
            translated = _pg_error(exc, sql)
            if translated is exc:
                raise
            raise translated from exc
        return [tuple(record) for record in records]

    async def fast_batch(self, statement: BatchStatement, params: Mapping[str, Any]) -> Row | None:
        # Refresh rotations: one statement a turn for all of them.
        row: Row | None = await self._this_turn(
            statement, params, functools.partial(self._run_batch, statement)
        )
        return row

    async def _run_batch(
        self, statement: BatchStatement, pending: list[tuple[Mapping[str, Any], _Answer]]
    ) -> None:
        if len(pending) == 1:
            await self._run_alone(statement, *pending[0])
            return
        try:
            rows = await self._run_many(statement, [params for params, _ in pending])
        except DatabaseUnavailable as exc:
            for _, answer in pending:
                _fail(answer, exc)
            return
        except Exception:
            # A call that cannot be done (a constraint), or a deadlock with another process
            # whose batch locks the same rows: nothing was written; each call alone, so only
            # a bad one fails.
            for params, answer in pending:
                await self._run_alone(statement, params, answer)
            return
        for position, (_, answer) in enumerate(pending, start=1):
            _answer(answer, rows.get(position))

    async def _run_alone(
        self, statement: BatchStatement, params: Mapping[str, Any], answer: _Answer
    ) -> None:
        try:
            row = await self.fast_execute(statement.one, params)
        except Exception as exc:  # handed to the caller, who waits for it
            _fail(answer, exc)
        else:
            _answer(answer, row)

    async def _run_many(
        self, statement: BatchStatement, calls: list[Mapping[str, Any]]
    ) -> dict[int, Row]:
        rows = await self._fetch_all(statement.many, *statement.arrays(calls))
        return {row[0]: statement.one.mapping(row[1:]) for row in rows}

    async def fast_insert(self, statement: BatchInsert, params: Mapping[str, Any]) -> None:
        # Audit events: one INSERT ... SELECT FROM unnest(...) a turn.
        await self._this_turn(statement, params, functools.partial(self._insert, statement))

    async def _insert(
        self,
        statement: BatchInsert,
        pending: list[tuple[Mapping[str, Any], asyncio.Future[None]]],
    ) -> None:
        try:
            if len(pending) == 1:
                await self.fast_execute(statement.one, pending[0][0])
            else:
                await self._insert_many(statement, [params for params, _ in pending])
        except DatabaseUnavailable as exc:
            for _, inserted in pending:
                _fail(inserted, exc)
            return
        except Exception as exc:
            if len(pending) == 1:
                _fail(pending[0][1], exc)
                return
            # One row could not be stored: each row alone, so only that one fails.
            for params, inserted in pending:
                try:
                    await self.fast_execute(statement.one, params)
                except Exception as row_exc:
                    _fail(inserted, row_exc)
                else:
                    _succeed(inserted)
            return
        for _, inserted in pending:
            _succeed(inserted)

    async def _insert_many(self, statement: BatchInsert, rows: list[Mapping[str, Any]]) -> None:
        await self._fetch_all(statement.many, *statement.arrays(rows))

    async def fast_write(self, work: FastWork[T]) -> T:
        try:
            async with self._pool().connection() as conn, conn.transaction():
                return await work(_PostgresFast(conn))
        except Exception as exc:
            translated = _pg_error(exc, "")
            if translated is exc:
                raise
            raise translated from exc

    def changes(self, channel: str) -> Changes:
        found = self._changes.get(channel)
        if found is None:
            found = self._changes[channel] = Changes(channel, self._connect)
        return found

    async def close(self) -> None:
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        for changes in self._changes.values():
            await changes.close()
        if self._fast_pool is not None:
            await self._fast_pool.close()
        await self._engine.dispose()

    def _connect_args(self) -> dict[str, Any]:
        _, connect_args = self._engine.dialect.create_connect_args(self._engine.url)
        return {
            **connect_args,
            "timeout": self._timeout,
            "command_timeout": self._timeout,
            "server_settings": {"application_name": "ostiary"},
        }

    async def _connect(self) -> Any:
        import asyncpg  # type: ignore[import-untyped]  # noqa: PLC0415 - PostgreSQL only

        return await asyncpg.connect(**self._connect_args())

    def _pool(self) -> ConnectionPool:
        if self._fast_pool is None:
            self._fast_pool = ConnectionPool(
                self._connect,
                size=self._pool_size,
                server_errors=_pg_server_error(),
                wait_timeout=self._timeout,
            )
        return self._fast_pool


_Answer = asyncio.Future[Row | None]


def _succeed(future: asyncio.Future[None]) -> None:
    _answer(future, None)


def _answer(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():  # a caller that was cancelled no longer waits
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _pg_error(exc: Exception, sql: str) -> Exception:
    """What the token path raises for an asyncpg error: SQLAlchemy's `IntegrityError` for a
    constraint (as `write` does), `DatabaseUnavailable` when the database is out of reach,
    timed out or shutting down (as `reachable` decides), else the error itself."""
    import asyncpg  # noqa: PLC0415

    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(sql, None, exc)
    if isinstance(
        exc, OSError | TimeoutError | asyncpg.InterfaceError | asyncpg.PostgresConnectionError
    ) or (  # 57P: the server is shutting down, or cancelled the statement on a timeout
        isinstance(exc, asyncpg.PostgresError) and str(exc.sqlstate or "").startswith("57P")
    ):
        return _unavailable(exc)
    return exc


def _pg_server_error() -> type[Exception]:
    import asyncpg  # noqa: PLC0415

    error: type[Exception] = asyncpg.PostgresError
    return error


class _PostgresFast:
    def __init__(self, conn: Any) -> None:  # an asyncpg.Connection
        self._conn = conn

    async def one(self, statement: FastStatement, params: Mapping[str, Any]) -> Row | None:
        form = statement.postgresql
        row = await self._conn.fetchrow(form.sql, *statement.args(form, params))
        return None if row is None else statement.mapping(tuple(row))

    async def run(self, statement: FastStatement, params: Mapping[str, Any]) -> None:
        form = statement.postgresql
        await self._conn.execute(form.sql, *statement.args(form, params))


class SqliteDatabase:
    is_postgresql = False

    def __init__(self, engine: Engine, *, memory: bool) -> None:
        self._engine = engine
        self._memory = memory  # one connection is the whole database: all of it inline
        self._inline: Connection | None = None  # used on the event loop's thread only
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ostiary-sqlite-writer")
        self._writers = asyncio.Lock()  # held while a unit of work runs in the writer thread
        self._commits = 0  # inline commits since the last checkpoint was started
        self._checkpoint: asyncio.Task[None] | None = None
        # set while a checkpoint that starts the WAL over runs: inline writes wait for it
        self._restarting: asyncio.Future[None] | None = None
        self._inline_raw: sqlite3.Connection | None = None  # `_inline`'s sqlite3 connection
        # The open group-commit transaction's waiters (see `fast_write`), or None.
        self._batch: list[asyncio.Future[None]] | None = None
        # `PRAGMA data_version` as read during the open batch (see `_data_version`)
        self._batch_version: tuple[list[asyncio.Future[None]], Hashable] | None = None
        # rows waiting for the end of this turn of the event loop, by statement (`fast_insert`)
        self._rows: dict[BatchInsert, list[tuple[Mapping[str, Any], asyncio.Future[None]]]] = {}
        self._inserting: set[asyncio.Task[None]] = set()  # rows that had to wait their turn

    async def read(self, work: Work[T]) -> T:
        self._commit_batch()
        with reachable():
            return await self._read(work)

    async def write(self, work: Work[T], *, bulk: bool = False) -> T:
        self._commit_batch()
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
        while self._restarting is not None:
            await asyncio.shield(self._restarting)
            # the writes that went on meanwhile may have opened a batch on this connection,
            # whose transaction this write's BEGIN would fail in (and its rollback end)
            self._commit_batch()
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

    def changes(self, channel: str) -> DataVersion:
        return DataVersion(self._data_version)

    def _data_version(self) -> Hashable:
        """Which commits of other connections the event loop's connection has seen; a new
        object (equal to nothing cached) when it cannot tell."""
        batch, known = self._batch, self._batch_version
        if batch is not None and known is not None and known[0] is batch:
            # The open batch holds SQLite's write lock (BEGIN IMMEDIATE): no other connection
            # can commit before it does, so the number read once in it holds until then.
            return known[1]
        raw = self._raw()
        try:
            row = raw.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            return object()
        version = (id(raw), row[0])
        if batch is not None:
            self._batch_version = (batch, version)
        return version

    async def fast_read(self, statement: FastStatement, params: Mapping[str, Any]) -> Row | None:
        form = statement.sqlite
        args = statement.args(form, params)
        try:
            try:
                row = self._raw().execute(form.sql, args).fetchone()
            except sqlite3.OperationalError as exc:
                if not _is_busy_error(exc):
                    raise
                row = await self._in_thread(
                    self._read_in_thread,
                    lambda conn: _raw(conn).execute(form.sql, args).fetchone(),
                )
        except (sqlite3.OperationalError, OperationalError) as exc:
            unavailable = _sqlite_unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from exc
        return None if row is None else statement.mapping(row)

    async def fast_lookup(self, statement: BatchLookup, key: str) -> Row | None:
        return await self.fast_read(statement.one, {statement.param: key})  # no round trip

    async def fast_batch(self, statement: BatchStatement, params: Mapping[str, Any]) -> Row | None:
        return await self.fast_execute(statement.one, params)  # group commit batches already

    async def fast_execute(self, statement: FastStatement, params: Mapping[str, Any]) -> Row | None:
        async def work(conn: FastConnection) -> Row | None:
            return await conn.one(statement, params)

        # SQLite undoes a failed statement by itself and keeps the transaction: no savepoint
        return await self._fast_write(work, savepoint=False)

    async def fast_write(self, work: FastWork[T]) -> T:
        return await self._fast_write(work, savepoint=True)

    async def fast_insert(self, statement: BatchInsert, params: Mapping[str, Any]) -> None:
        # The rows of one turn go in together, as one unit of the group commit: one
        # `executemany` steps one prepared statement per row, where a statement each costs
        # a statement lookup, a cursor and a savepoint's worth of Python per row.
        loop = asyncio.get_running_loop()
        pending = self._rows.get(statement)
        if pending is None:
            pending = self._rows[statement] = []
            loop.call_soon(self._insert_rows, statement)
        inserted: asyncio.Future[None] = loop.create_future()
        pending.append((params, inserted))
        try:
            await inserted
        except (sqlite3.OperationalError, OperationalError) as exc:  # the COMMIT, say
            unavailable = _sqlite_unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from exc

    def _insert_rows(self, statement: BatchInsert) -> None:
        form = statement.one.sqlite
        pending, rows = [], []
        for params, inserted in self._rows.pop(statement, []):
            try:
                rows.append(statement.one.args(form, params))
            except Exception as exc:  # a value no column can hold: that row's caller is told
                _fail(inserted, exc)
            else:
                pending.append((params, inserted))
        if not pending:
            return

        async def insert(conn: FastConnection) -> None:
            self._raw().executemany(form.sql, rows)

        try:
            if not self._memory and (self._writers.locked() or self._restarting is not None):
                raise _Busy  # each row then waits its turn (`_fast_write`)
            _, waiters = self._run_in_batch(insert, savepoint=True)
        except _Busy:  # another writer holds the lock: each row waits its turn as before
            self._insert_later(statement, pending)
        except IntegrityError:
            # One row cannot be stored (its savepoint took the others back): each row alone,
            # so only that one fails.
            self._insert_later(statement, pending)
        except Exception as exc:  # the file out of reach, or worse: every row's caller is told
            error = _as_unavailable(exc)
            for _, inserted in pending:
                _fail(inserted, error)
        else:
            waiters.extend(inserted for _, inserted in pending)

    def _insert_later(
        self, statement: BatchInsert, pending: list[tuple[Mapping[str, Any], asyncio.Future[None]]]
    ) -> None:
        async def insert() -> None:
            for params, inserted in pending:
                try:
                    await self.fast_execute(statement.one, params)
                except Exception as exc:  # handed to the caller, who waits for it
                    _fail(inserted, exc)
                else:
                    _succeed(inserted)

        task = asyncio.get_running_loop().create_task(insert())
        self._inserting.add(task)
        task.add_done_callback(self._inserting.discard)

    async def _fast_write(self, work: FastWork[T], *, savepoint: bool) -> T:
        """Group commit: every unit of work run inline during one turn of the event loop
        shares one transaction, committed at the end of the turn, and each caller returns
        only once it is committed. A COMMIT (with its BEGIN) costs more CPU than the
        statements of a token request, and under load many requests end in the same turn.
        Each unit runs in a savepoint, so a failed one leaves the others' work intact.
        """
        while self._restarting is not None:
            await asyncio.shield(self._restarting)
        try:
            if self._memory or not self._writers.locked():
                try:
                    result, waiters = self._run_in_batch(work, savepoint=savepoint)
                except _Busy:
                    pass
                else:
                    committed = asyncio.get_running_loop().create_future()
                    waiters.append(committed)
                    await committed
                    return result
            loop = asyncio.get_running_loop()
            async with self._writers:
                self._commit_batch()
                return await loop.run_in_executor(self._writer, self._fast_write_in_thread, work)
        except (sqlite3.OperationalError, OperationalError) as exc:
            unavailable = _sqlite_unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from exc

    def _run_in_batch(
        self, work: FastWork[T], *, savepoint: bool
    ) -> tuple[T, list[asyncio.Future[None]]]:
        """Run `work` in the open batch (opening it first): its result, and the batch's
        waiters, to which the caller adds itself."""
        raw = self._raw()
        waiters = self._batch
        if waiters is None:
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if _is_busy_error(exc):
                    raise _Busy from exc
                raise
            waiters = self._batch = []
            asyncio.get_running_loop().call_soon(self._commit_batch)
        if savepoint:
            raw.execute("SAVEPOINT unit")
        try:
            result = _drive(work(_SqliteFast(raw)))
        except BaseException as exc:
            if not raw.in_transaction:
                # Some errors (a full disk, an I/O error) end the whole transaction: the
                # batch is lost, and every unit in it fails.
                self._fail_batch(exc)
            elif savepoint:
                raw.execute("ROLLBACK TO unit")
                raw.execute("RELEASE unit")
            if isinstance(exc, sqlite3.IntegrityError):
                raise IntegrityError("", None, exc) from exc
            raise
        if savepoint:
            raw.execute("RELEASE unit")
        return result, waiters

    def _fail_batch(self, exc: BaseException) -> None:
        waiters, self._batch = self._batch, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_exception(OperationalError("COMMIT", None, exc))

    def _commit_batch(self) -> None:
        waiters, self._batch = self._batch, None
        if waiters is None:
            return
        raw = self._raw()
        try:
            raw.execute("COMMIT")
        except sqlite3.Error as exc:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            self._batch = waiters
            self._fail_batch(exc)
            return
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if not self._memory:
            self._committed_inline()

    async def close(self) -> None:
        for statement in list(self._rows):  # rows still waiting for their turn to end
            self._insert_rows(statement)
        if self._inserting:
            await asyncio.gather(*self._inserting, return_exceptions=True)
        self._commit_batch()
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
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
            self._inline_raw = raw
        return self._inline

    async def _in_thread(self, run: Callable[[Work[T]], T], work: Work[T]) -> T:
        self._commit_batch()
        loop = asyncio.get_running_loop()
        async with self._writers:
            return await loop.run_in_executor(self._writer, run, work)

    def _read_in_thread(self, work: Work[T]) -> T:
        with self._engine.connect() as conn:
            return work(conn)

    def _write_in_thread(self, work: Work[T]) -> T:
        with self._engine.connect() as conn:
            return self._write(conn, work)

    def _fast_write_in_thread(self, work: FastWork[T]) -> T:
        with self._engine.connect() as conn:
            return _run_fast(_raw(conn), work)  # waits in SQLite's busy handler

    def _raw(self) -> sqlite3.Connection:
        inline, raw = self._inline, self._inline_raw
        if raw is None or inline is None or inline.invalidated or inline.closed:
            return _raw(self._connection())
        return raw

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
            self._checkpoint = asyncio.get_running_loop().create_task(self._checkpoint_wal())

    async def _checkpoint_wal(self) -> None:
        """Copy the WAL into the database file, in the writer thread (it ends in an fsync),
        beside the inline writes.

        SQLite starts the WAL over only once a checkpoint has copied all of it, and one that
        runs while writes go on never copies the frames they add meanwhile: under a steady
        load the WAL grew without end (490 MB beside a 41 MB database after a few minutes of
        refreshes, every lookup slower as the WAL's index grew). So when the WAL is
        `WAL_RESTART_FRAMES` long, the checkpoint goes on until what is left to copy is
        small (`WAL_TAIL_FRAMES`), then copies that tail while the inline writes wait for it
        (`_restarting`), and the first of them starts the WAL over. They wait rather than go
        to the writer thread: one at a time there, with a COMMIT each, they would keep the
        writers' lock taken and every write after them on that slow path."""
        loop = asyncio.get_running_loop()
        try:
            log, copied = await loop.run_in_executor(self._writer, self._run_checkpoint)
            if log < WAL_RESTART_FRAMES:
                return
            for _ in range(CATCH_UP_PASSES):
                if log - copied <= WAL_TAIL_FRAMES:
                    break
                log, copied = await loop.run_in_executor(self._writer, self._run_checkpoint)
            self._restarting = loop.create_future()
            try:
                self._commit_batch()
                await loop.run_in_executor(self._writer, self._run_checkpoint)
            finally:
                self._restarting.set_result(None)
                self._restarting = None
        except (sqlite3.Error, DBAPIError):
            return  # the next checkpoint tries again; a write that fails says why itself

    def _run_checkpoint(self) -> tuple[int, int]:
        """PASSIVE: copy what it can from the WAL into the file, waiting for no one; the
        WAL's length in frames, and how many of them are copied."""
        with self._engine.connect() as conn:
            raw: Any = conn.connection.driver_connection
            row = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if row is None or row[1] is None or row[1] < 0:
            return 0, 0
        return int(row[1]), int(row[2])


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
        raise _unavailable(exc) from exc
    except (InterfaceError, PoolTimeout, OSError, TimeoutError) as exc:
        raise _unavailable(exc) from exc
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        raise _unavailable(exc, "the server lost its database connection") from exc


def _sqlite_unavailable(
    exc: sqlite3.OperationalError | OperationalError,
) -> DatabaseUnavailable | None:
    """`DatabaseUnavailable` for a SQLite error of the token path when the file is out of
    reach (as `reachable` decides); None for any other error."""
    orig = exc.orig if isinstance(exc, OperationalError) else exc
    code = getattr(orig, "sqlite_errorcode", None)
    if code is None or code & 0xFF not in _SQLITE_UNAVAILABLE:
        return None
    return _unavailable(exc)


def _unavailable(
    exc: BaseException, what: str = "the server cannot reach its database"
) -> DatabaseUnavailable:
    """The core's error for a database out of reach: 503 with Retry-After, no secret."""
    return DatabaseUnavailable(
        f"{what}; try again shortly",
        retry_after=RETRY_AFTER_S,
        detail=f"{type(exc).__name__}: {_first_line(exc)}",
    )


def _first_line(exc: BaseException) -> str:
    # The driver's message names the host and the failure, never a password or a parameter.
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[0][:200] if lines else type(cause).__name__


def _as_unavailable(exc: Exception) -> Exception:
    """`exc`, or the core's `DatabaseUnavailable` when it says the file is out of reach."""
    if isinstance(exc, sqlite3.OperationalError | OperationalError):
        return _sqlite_unavailable(exc) or exc
    return exc


def _is_busy(exc: OperationalError) -> bool:
    return isinstance(exc.orig, sqlite3.Error) and _is_busy_error(exc.orig)


def _is_busy_error(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


def _raw(conn: Connection) -> sqlite3.Connection:
    raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
    return raw


class _Busy(Exception):
    """Another process holds SQLite's write lock: run the work in the writer thread."""


class _SqliteFast:
    """`FastConnection` on sqlite3: its coroutines finish without ever suspending."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw

    async def one(self, statement: FastStatement, params: Mapping[str, Any]) -> Row | None:
        form = statement.sqlite
        row = self._raw.execute(form.sql, statement.args(form, params)).fetchone()
        return None if row is None else statement.mapping(row)

    async def run(self, statement: FastStatement, params: Mapping[str, Any]) -> None:
        form = statement.sqlite
        self._raw.execute(form.sql, statement.args(form, params))


def _drive(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a SQLite unit of work to its end without an event loop: it never suspends."""
    try:
        coroutine.send(None)
    except StopIteration as finished:
        result: T = finished.value
        return result
    coroutine.close()
    raise RuntimeError("a SQLite unit of work waited for something besides SQLite")


def _run_fast(raw: sqlite3.Connection, work: FastWork[T]) -> T:
    """`work` in one `BEGIN IMMEDIATE` transaction of its own (the writer thread's way)."""
    raw.execute("BEGIN IMMEDIATE")
    try:
        result = _drive(work(_SqliteFast(raw)))
        raw.execute("COMMIT")
    except BaseException as exc:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        if isinstance(exc, sqlite3.IntegrityError):
            raise IntegrityError("", None, exc) from exc
        raise
    return result


def pool_status(db: Database) -> dict[str, int]:
    """The connection pools right now: size, checked_out, checked_in, overflow (for metrics).

    On PostgreSQL both pools count: SQLAlchemy's, and the token path's own."""
    pool = db._engine.pool if isinstance(db, PostgresDatabase | SqliteDatabase) else None
    if not isinstance(pool, QueuePool):  # in-memory SQLite: one static connection
        return {}
    status = {
        "size": pool.size(),
        "checked_out": pool.checkedout(),
        "checked_in": pool.checkedin(),
        "overflow": max(0, pool.overflow()),
    }
    if isinstance(db, PostgresDatabase) and db._fast_pool is not None:
        fast = db._fast_pool.status()
        status["size"] += fast["size"]
        status["checked_out"] += fast["checked_out"]
        status["checked_in"] += fast["checked_in"]
    return status


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
        # N workers x pool_size is the whole connection budget (and one listening connection
        # each): the token path's statements get half of it, SQLAlchemy the other half.
        fast_size = pool_size - pool_size // 2
        engine = create_async_engine(
            url,
            pool_size=max(1, pool_size // 2),
            max_overflow=0,
            pool_timeout=timeout,
            connect_args={
                "timeout": timeout,
                "command_timeout": timeout,
                "server_settings": {"application_name": "ostiary"},
            },
        )
        return PostgresDatabase(engine, pool_size=fast_size, timeout=timeout)
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
            # the WAL file, once started over, is cut back to this size (see `_checkpoint_wal`)
            cursor.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN, "BEGIN"))
