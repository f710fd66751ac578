"""`SharedRateLimiter`: at most `limit` requests per key per fixed window of `window` seconds,
over every server process, without a database or Redis round trip per request.

Each process counts locally (`take`, a few dictionary operations) and every `sync_interval`
seconds adds what it counted to the shared counters (the database, or Redis when configured)
in one batch, reading back each key's total over all processes. A process refuses a key once
its own count plus the others' last known total reaches the limit.

Overshoot bound: a process learns what the others admitted at its next sync, so with `N`
processes the total admitted in one window is at most `limit + (N - 1) * r * sync_interval`,
where `r` is the rate at which one process admits that key's requests (and never more than
`N * limit`). When the shared counters cannot be reached, each process goes on counting
alone (a warning is logged) and catches up at the next sync that works.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Final

from ostiary.oauth.errors import DatabaseUnavailable
from ostiary.oauth.store import RateCounterStore

from . import metrics

log = logging.getLogger("ostiary.server")

_SHARE_ERRORS: Final = (DatabaseUnavailable, OSError, ConnectionError, TimeoutError)


class SharedRateLimiter:
    """`ostiary.oauth.rate_limits.RateLimiter` shared between processes through `counters`."""

    def __init__(
        self,
        counters: RateCounterStore,
        *,
        name: str,
        limit: int,
        window: int,
        sync_interval: float,
        errors: tuple[type[BaseException], ...] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1 or window < 1 or sync_interval <= 0:
            raise ValueError("limit and window must be >= 1 and sync_interval > 0")
        self._counters = counters
        self.name = name  # for the metrics: "token"
        self.limit = limit
        self.window = window
        self.sync_interval = sync_interval
        self._errors = _SHARE_ERRORS + errors  # what a failed share may raise
        self._clock = clock
        self._current = -1  # the window the dictionaries below are about
        self._mine: dict[str, int] = {}  # admitted here in this window (shared or not)
        self._pending: dict[str, int] = {}  # admitted here, not yet added to the counters
        self._pushed: dict[str, int] = {}  # added to the counters by this process
        self._others: dict[str, int] = {}  # the other processes' total at the last sync

    def take(self, key: str, *, now: float) -> int:
        current = int(now // self.window)
        if current != self._current:
            self._start(current)
        if self._others.get(key, 0) + self._mine.get(key, 0) >= self.limit:
            metrics.count_rate_limited(self.name)
            return max(1, math.ceil((current + 1) * self.window - now))
        self._mine[key] = self._mine.get(key, 0) + 1
        self._pending[key] = self._pending.get(key, 0) + 1
        return 0

    def _start(self, current: int) -> None:
        # counts of an earlier window no longer limit anything: they are not shared late
        self._current = current
        self._mine, self._pending, self._pushed, self._others = {}, {}, {}, {}

    async def share(self) -> None:
        """Add what this process counted since the last share; learn the others' totals."""
        current, pending = self._current, self._pending
        if not pending:
            return
        self._pending = {}
        try:
            totals = await self._counters.add(
                current,
                pending,
                expires_at=(current + 2) * self.window,
                now=int(self._clock()),
            )
        except BaseException:
            if self._current == current:  # give them back, for the next share
                for key, n in pending.items():
                    self._pending[key] = self._pending.get(key, 0) + n
            raise
        if self._current != current:
            return  # a new window began meanwhile
        for key, n in pending.items():
            self._pushed[key] = self._pushed.get(key, 0) + n
        for key, total in totals.items():
            self._others[key] = max(0, total - self._pushed.get(key, 0))

    async def run(self) -> None:
        """Share every `sync_interval` seconds until cancelled."""
        failing = False
        while True:
            await asyncio.sleep(self.sync_interval)
            try:
                await self.share()
            except self._errors as exc:
                if not failing:
                    log.warning(
                        "rate limit %r: cannot share counts (%s); counting in this process "
                        "alone until it can",
                        self.name,
                        type(exc).__name__,
                    )
                failing = True
            else:
                failing = False

    async def close(self) -> None:
        """A last share at shutdown, so other processes count what this one admitted."""
        with contextlib.suppress(*self._errors):
            await self.share()
