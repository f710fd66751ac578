"""One fetch at a time, at most one per interval, shared by everyone waiting for it.

Both the issuer's metadata and its JWKS are fetched this way: a burst of requests with
unknown key ids, or a flood while the issuer is down, costs the issuer one request per
interval, never one per incoming request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any


class Refetcher:
    """Runs `fetch` (which never raises: it records its own outcome) under those rules."""

    def __init__(
        self,
        fetch: Callable[[], Coroutine[Any, Any, bool]],
        *,
        interval: float,
        clock: Callable[[], float],
    ) -> None:
        if interval < 0:
            raise ValueError("interval must not be negative")
        self._fetch = fetch
        self._interval = interval
        self._clock = clock
        self._attempted_at: float | None = None
        self._running: asyncio.Task[bool] | None = None

    @property
    def interval(self) -> float:
        return self._interval

    def may_fetch(self) -> bool:
        """True when a fetch is running (join it) or the interval since the last has passed."""
        if self._running is not None:
            return True
        return self._attempted_at is None or self._clock() - self._attempted_at >= self._interval

    async def run(self) -> bool:
        """Join the running fetch, or start one if allowed; False when neither, or it failed."""
        task = self._task()
        if task is None:
            return False
        # shield: one caller giving up (a client disconnect) must not cancel everyone's fetch
        return await asyncio.shield(task)

    def start(self) -> None:
        """Begin a fetch in the background if allowed; nobody waits for it."""
        self._task()

    def _task(self) -> asyncio.Task[bool] | None:
        if self._running is None:
            if not self.may_fetch():
                return None
            self._attempted_at = self._clock()
            self._running = asyncio.get_running_loop().create_task(self._fetch())
            self._running.add_done_callback(self._finished)
        return self._running

    def _finished(self, task: asyncio.Task[bool]) -> None:
        if self._running is task:
            self._running = None

    async def aclose(self) -> None:
        """Cancel a fetch in flight."""
        task, self._running = self._running, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
