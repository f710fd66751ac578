"""How a process may cache rows that another process changes.

`Changes` is PostgreSQL's LISTEN/NOTIFY; `DataVersion` is SQLite's `PRAGMA data_version`.

Every write that changes a cached kind of row also sends `NOTIFY <channel>` in its own
transaction (PostgreSQL delivers it when, and only if, that transaction commits). Each server
process listens on one connection of its own and bumps `generation` on every notification.
A cache keeps an entry only while `active` and only for the generation it was read in, so
after any change, or while the listening connection is down (when a notification could be
missed), every lookup goes to the database again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Final, Protocol

log = logging.getLogger("ostiary.store")

RECONNECT_DELAYS: Final = (0.5, 1.0, 2.0, 5.0, 10.0)  # seconds, the last one repeated


class ChangeFeed(Protocol):
    """What a cache asks: is the feed `active`, and which `generation` is it at? An entry
    read in one generation is good only while the feed stays at that generation."""

    @property
    def active(self) -> bool: ...
    @property
    def generation(self) -> Hashable: ...
    def start(self) -> None: ...
    def changed_here(self) -> None: ...


class DataVersion:
    """SQLite's feed: the generation moves whenever another connection (another process,
    this one's writer thread) commits anything, as `PRAGMA data_version` on the connection
    that serves lookups tells (SQLite keeps that number in memory: reading it costs about a
    microsecond), and whenever this process changes the rows itself. Coarse, since any
    table counts, but writers other than the event loop's connection are rare."""

    active: Final = True

    def __init__(self, read_version: Callable[[], Hashable]) -> None:
        self._read_version = read_version
        self._here = 0

    @property
    def generation(self) -> Hashable:
        return (self._read_version(), self._here)

    def start(self) -> None:
        """Nothing to start: SQLite keeps the number itself."""

    def changed_here(self) -> None:
        self._here += 1


class Changes:
    """Notifications on one channel: `active` while listening, `generation` per change."""

    def __init__(self, channel: str, connect: Callable[[], Awaitable[Any]]) -> None:
        self.channel = channel
        self.active = False
        self.generation = 0
        self._connect = connect
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()

    def start(self) -> None:
        """Begin listening in the background (idempotent; needs a running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen())

    async def close(self) -> None:
        self.active = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def changed_here(self) -> None:
        """This process changed the rows itself: forget them now, not at the notification."""
        self.generation += 1

    def _changed(self, *_: Any) -> None:
        self.generation += 1

    def _terminated(self, *_: Any) -> None:
        self.active = False
        self.generation += 1
        self._lost.set()

    async def _listen(self) -> None:
        failures = 0
        while True:
            conn = None
            try:
                try:
                    conn = await self._connect()
                    conn.add_termination_listener(self._terminated)
                    await conn.add_listener(self.channel, self._changed)
                except (TimeoutError, OSError, _postgres_error()) as exc:
                    delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                    failures += 1
                    log.warning("not listening for %s changes (%s); retrying", self.channel, exc)
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                self._lost.clear()
                self.generation += 1  # whatever was read before now may be stale
                self.active = True
                await self._lost.wait()
            finally:
                self.active = False
                if conn is not None:
                    conn.terminate()


def _postgres_error() -> type[Exception]:
    import asyncpg  # type: ignore[import-untyped]  # noqa: PLC0415 - PostgreSQL only

    error: type[Exception] = asyncpg.PostgresError
    return error
