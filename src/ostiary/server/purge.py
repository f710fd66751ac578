"""Removing what expired from the database, so its tables stop growing: `purge_expired` runs
one purge to its end (or to its time budget), `Purger` runs one every `OSTIARY_PURGE_INTERVAL`
seconds in the background of every `ostiary serve` process; `ostiary purge` runs one by hand.

What may go and what the protocol still needs is decided by the store
(`TokenStore.purge_expired`); here is only when, how much at a time, and the report: an INFO
line with the rows removed by table (never a token or a hash), and
`ostiary_purged_rows_total` by table.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from ostiary.oauth.errors import DatabaseUnavailable
from ostiary.oauth.models import PURGED_TABLES
from ostiary.oauth.store import Store

from . import metrics

log = logging.getLogger("ostiary.server")

# Rows go this long after they expired, not at once: the clocks of several server processes
# may disagree by a little, a request may still be writing a token of a grant it read just
# before, and a token is checked with some leeway. None of those reaches minutes.
PURGE_GRACE: Final = 300
# Rows a statement deletes at most: a few milliseconds of SQLite's write lock, which every
# token request of every process on that file waits for.
PURGE_BATCH: Final = 1000
# Seconds one background purge spends at most; a backlog is taken up again at the next one.
PURGE_BUDGET: Final = 30.0
JITTER: Final = 0.2  # each wait is the interval, give or take this share of it


@dataclass(frozen=True, kw_only=True)
class PurgeReport:
    """What one purge removed, by table (every name of `PURGED_TABLES`)."""

    counts: Mapping[str, int] = field(default_factory=dict)
    complete: bool = True  # False: stopped by its time budget, with rows left to look at
    busy: bool = False  # another process was purging the same database (PostgreSQL)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def purge_expired(
    store: Store,
    *,
    now: int,
    throttle_memory: int | None = None,
    batch: int = PURGE_BATCH,
    budget: float | None = None,
    timer: Callable[[], float] = time.monotonic,
) -> PurgeReport:
    """Delete, in steps of at most `batch` rows a table, what expired `PURGE_GRACE` seconds
    before `now` and the protocol no longer needs; login throttle hits older than
    `throttle_memory` seconds too (None: keep them). Stop after `budget` seconds (None: when
    done) or when another process is purging."""
    counts = dict.fromkeys(PURGED_TABLES, 0)
    started = timer()
    throttle_before = None if throttle_memory is None else now - throttle_memory
    while True:
        step = await store.tokens.purge_expired(
            before=now - PURGE_GRACE, limit=batch, throttle_before=throttle_before
        )
        for table, count in step.counts.items():
            counts[table] = counts.get(table, 0) + count
        if step.busy or not step.more:
            return PurgeReport(counts=counts, busy=step.busy)
        if budget is not None and timer() - started >= budget:
            return PurgeReport(counts=counts, complete=False)
        await asyncio.sleep(0)  # the requests of this process go first between steps


def report(purged: PurgeReport, *, seconds: float) -> None:
    """Count the rows in the metrics and say what went in one INFO line."""
    for table, count in purged.counts.items():
        if count:
            metrics.count_purged(table, count)
    if purged.busy and not purged.total:
        log.info("purge: another process is purging the database; skipped this round")
        return
    removed = " ".join(f"{table}={count}" for table, count in purged.counts.items() if count)
    log.info(
        "purge: removed %d expired rows in %.2f s%s%s",
        purged.total,
        seconds,
        f" ({removed})" if removed else "",
        "" if purged.complete else "; more left for the next round",
    )


class Purger:
    """The background purge of one server process, started by the app's lifespan."""

    def __init__(
        self,
        store: Store,
        *,
        interval: float,
        clock: Callable[[], int],
        throttle_memory: int | None = None,
        budget: float = PURGE_BUDGET,
        rng: random.Random | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive (leave the purger out to turn it off)")
        self._store = store
        self._interval = interval
        self._clock = clock
        self._throttle_memory = throttle_memory
        self._budget = budget
        self._random = rng or random.Random()  # noqa: S311 - spreading timers, not a secret

    async def run(self) -> None:
        """Purge every interval until cancelled. The first wait is anywhere in one interval
        and each later one the interval give or take `JITTER`, so the processes of one
        deployment, often started together, do not all reach for the database at once."""
        wait = self._random.uniform(0, self._interval)
        while True:
            await asyncio.sleep(wait)
            await self.run_once()
            wait = self._interval * self._random.uniform(1 - JITTER, 1 + JITTER)

    async def run_once(self) -> PurgeReport | None:
        """One purge; a failure is logged (its kind, never its SQL or parameters, which may
        name token hashes) and None returned: the next round tries again."""
        started = time.monotonic()
        try:
            purged = await purge_expired(
                self._store,
                now=self._clock(),
                throttle_memory=self._throttle_memory,
                budget=self._budget,
            )
        except asyncio.CancelledError:
            raise
        except DatabaseUnavailable as exc:
            log.warning("purge failed, trying again next round: %s (%s)", exc, exc.detail)
            return None
        except Exception as exc:  # the server outlives a purge that failed
            cause = getattr(exc, "orig", None) or exc.__cause__
            what = type(exc).__name__ + (f" from {type(cause).__name__}" if cause else "")
            log.warning("purge failed, trying again next round: %s", what)
            return None
        report(purged, seconds=time.monotonic() - started)
        return purged
