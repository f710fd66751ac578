"""`DatabaseHealth`: the answer of `GET /health`, checked against the database at most once
per `interval` seconds per process, however many requests ask.

A load balancer, a monitoring system and an attacker may all poll `/health`; each poll
must not cost a database round trip (or a pooled connection). Requests inside the interval
get the latest answer; when it is older, the first request starts one check and every
request that arrives meanwhile waits for that same check. So the answer is never older than
`interval` plus the check's own `timeout`: a database that stops answering is reported
down within that bound.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("ostiary.server")


class DatabaseHealth:
    def __init__(
        self,
        ping: Callable[[], Awaitable[None]],
        *,
        timeout: float,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout <= 0 or interval <= 0:
            raise ValueError("timeout and interval must be > 0")
        self._ping = ping
        self.timeout = timeout
        self.interval = interval
        self._clock = clock
        self._checked_at = -math.inf  # when the latest finished check started
        self._healthy: bool | None = None  # its answer; None before the first
        self._running: asyncio.Task[bool] | None = None
        self.checks = 0  # checks started by this process (for the operator and the tests)

    async def is_healthy(self) -> bool:
        """True when the database answered a check that started at most `interval` ago."""
        if self._healthy is not None and self._clock() - self._checked_at < self.interval:
            return self._healthy
        if self._running is None:
            self._running = asyncio.get_running_loop().create_task(self._check())
        # shielded: a caller that goes away does not cancel the check the others wait for
        return await asyncio.shield(self._running)

    async def _check(self) -> bool:
        started = self._clock()
        self.checks += 1
        try:
            async with asyncio.timeout(self.timeout):
                await self._ping()
        except Exception as exc:  # any failure to answer is "unhealthy"; never a 500
            if self._healthy is not False:
                log.warning("health check: the database did not answer (%s)", type(exc).__name__)
            healthy = False
        else:
            if self._healthy is False:
                log.warning("health check: the database answers again")
            healthy = True
        self._healthy, self._checked_at, self._running = healthy, started, None
        return healthy
