"""`ConnectionPool`: the few asyncpg connections the token path runs its statements on.

asyncpg's own pool spends about as much Python on an acquire and release (a shielded
release task, timeouts, a reset query by default) as on the statement itself, which is a
round trip of about 25 µs. These connections never change session state and never return
to the pool inside a transaction, so lending one is taking it off a list and giving it back
is putting it back, with a queue of waiters when all are lent.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any


class ConnectionPool:
    """At most `size` connections made by `connect`, opened when first needed. A caller
    waits at most `wait_timeout` seconds for one (then `TimeoutError`)."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        *,
        size: int,
        server_errors: type[BaseException],
        wait_timeout: float,
    ) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._connect = connect
        self._server_errors = server_errors
        self._wait_timeout = wait_timeout
        self._size = size
        self._idle: list[Any] = []
        self._opened = 0  # connections lent, idle, or being opened
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._closed = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """Lend a connection; one that broke while lent is dropped, not given back."""
        conn = await self._acquire()
        try:
            yield conn
        except BaseException as exc:
            # An error the server answered with leaves the connection ready for the next
            # statement; anything else (a cancellation, a broken socket) may leave one half
            # done on the wire: never lend that connection again.
            if isinstance(exc, self._server_errors) and not conn.is_in_transaction():
                self._release(conn)
            else:
                self._drop(conn)
            raise
        self._release(conn)

    def status(self) -> dict[str, int]:
        """size, checked_out (lent) and checked_in (idle), as SQLAlchemy's pool says them."""
        idle = len(self._idle)
        return {"size": self._size, "checked_out": self._opened - idle, "checked_in": idle}

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._opened -= 1
            await conn.close()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionError("the connection pool is closed"))

    async def _acquire(self) -> Any:
        if self._closed:
            raise ConnectionError("the connection pool is closed")
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn
            self._opened -= 1  # the server or the network ended it while idle
        if self._opened < self._size:
            self._opened += 1
            try:
                return await self._connect()
            except BaseException:
                self._opened -= 1
                self._wake_one()
                raise
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._wait_timeout):
                conn = await waiter
        except (asyncio.CancelledError, TimeoutError):
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())  # handed over just as we were cancelled
            raise
        if conn is None:  # a slot was freed, not a connection: open one
            return await self._acquire()
        return conn

    def _release(self, conn: Any) -> None:
        if self._closed or conn.is_closed():
            self._drop(conn)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _drop(self, conn: Any) -> None:
        self._opened -= 1
        conn.terminate()
        self._wake_one()

    def _wake_one(self) -> None:
        """A slot is free: the first waiter opens a connection of its own."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
