"""The limits of the back-channel endpoints, shared between server processes without a
database or Redis round trip on the request's path:

- `SharedRateLimiter`: at most `limit` requests per key (a client) per fixed window of
  `window` seconds, with exponential back-off for a key that keeps going past it
  (`ostiary.oauth.rate_limits.strike`);
- `SharedClientAuthLimiter`: failed client authentication per address and per address and
  client id, with exponential back-off (`ostiary.oauth.rate_limits.failure`).

**Token requests.** Each process counts locally (`take`, a few dictionary operations) and
every `sync_interval` seconds adds what it counted to the shared counters (the database, or
Redis when configured) in one batch, reading back each key's total over all processes. A
process refuses a key once its own count plus the others' last known total reaches the
limit: that is a strike, which the process applies at once and reports at its next share;
the store applies each strike once (however many processes saw it) and every process then
adopts the store's penalty (`PenaltyStore.active`).

Overshoot bound: a process learns what the others admitted, and the penalties they set, at
its next share, so with `N` processes the total admitted in one window is at most
`limit + (N - 1) * r * sync_interval`, where `r` is the rate at which one process admits that
key's requests (and never more than `N * limit`). When the shared counters cannot be reached,
each process goes on counting alone (a warning is logged) and catches up at the next share
that works.

**Failed client authentication.** Checking whether an address must wait is a dictionary
lookup (none at all while no key anywhere is waiting). A failure is written to the shared
store at once (one short transaction, on the failure's path only) and its answer tells this
process; the others learn the new wait at their next refresh, within `sync_interval`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Final

from ostiary.oauth.errors import DatabaseUnavailable
from ostiary.oauth.rate_limits import ClientAuthWait, Penalty, failure, strike
from ostiary.oauth.store import PenaltyStore, RateCounterStore

log = logging.getLogger("ostiary.server")

_SHARE_ERRORS: Final = (DatabaseUnavailable, OSError, ConnectionError, TimeoutError)
TOKEN_PREFIX: Final = "token:"
CLIENT_AUTH_PREFIX: Final = "client_auth:"
CLIENT_AUTH_MEMORY: Final = 8  # failures are remembered this many back-off caps


class SharedRateLimiter:
    """`ostiary.oauth.rate_limits.RateLimiter` shared between processes through `counters`
    and `penalties`."""

    def __init__(
        self,
        counters: RateCounterStore,
        penalties: PenaltyStore,
        *,
        name: str,
        limit: int,
        window: int,
        sync_interval: float,
        backoff_cap: int = 0,
        errors: tuple[type[BaseException], ...] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1 or window < 1 or sync_interval <= 0 or backoff_cap < 0:
            raise ValueError(
                "limit and window must be >= 1, sync_interval > 0 and backoff_cap >= 0"
            )
        self._counters = counters
        self._penalty_store = penalties
        self.name = name  # for the logs: "token"
        self.limit = limit
        self.window = window
        self.sync_interval = sync_interval
        self.backoff_cap = backoff_cap
        self._errors = _SHARE_ERRORS + errors  # what a failed share may raise
        self._clock = clock
        self._current = -1  # the window the dictionaries below are about
        self._mine: dict[str, int] = {}  # admitted here in this window (shared or not)
        self._pending: dict[str, int] = {}  # admitted here, not yet added to the counters
        self._pushed: dict[str, int] = {}  # added to the counters by this process
        self._others: dict[str, int] = {}  # the other processes' total at the last sync
        self._penalties: dict[str, Penalty] = {}  # by key: the store's, or a strike of ours
        self._strikes: dict[str, int] = {}  # strikes seen here, not yet reported: key -> when

    def take(self, key: str, *, now: float) -> int:
        penalty = self._penalties.get(key)
        if penalty is not None and now < penalty.until:
            return penalty.wait(now)
        current = int(now // self.window)
        if current != self._current:
            self._start(current, now)
        if self._others.get(key, 0) + self._mine.get(key, 0) >= self.limit:
            at = math.floor(now)
            penalty = strike(penalty, at=at, window=self.window, cap=self.backoff_cap)
            self._penalties[key] = penalty
            self._strikes.setdefault(key, at)
            return max(1, penalty.wait(now))
        self._mine[key] = self._mine.get(key, 0) + 1
        self._pending[key] = self._pending.get(key, 0) + 1
        return 0

    def _start(self, current: int, now: float) -> None:
        # counts of an earlier window no longer limit anything: they are not shared late
        self._current = current
        self._mine, self._pending, self._pushed, self._others = {}, {}, {}, {}
        self._penalties = {k: p for k, p in self._penalties.items() if p.forget_at > now}

    async def share(self) -> None:
        """Add what this process counted since the last share, report its strikes; learn the
        others' totals and every penalty in force."""
        current, pending, strikes = self._current, self._pending, self._strikes
        self._pending, self._strikes = {}, {}
        now = math.floor(self._clock())
        shared: dict[str, Penalty] = {}
        try:
            totals: dict[str, int] = {}
            if pending:
                totals = await self._counters.add(
                    current,
                    pending,
                    expires_at=(current + 2) * self.window,
                    now=now,
                )
            for key, at in sorted(strikes.items()):  # one lock order for every process
                rule = functools.partial(strike, at=at, window=self.window, cap=self.backoff_cap)
                shared[key] = await self._penalty_store.update(TOKEN_PREFIX + key, rule, now=now)
            active = await self._penalty_store.active(TOKEN_PREFIX, now=now)
        except BaseException:
            if self._current == current:  # give them back, for the next share
                for key, n in pending.items():
                    self._pending[key] = self._pending.get(key, 0) + n
            for key, at in strikes.items():
                if key not in shared:
                    self._strikes.setdefault(key, at)
            raise
        penalties = {key.removeprefix(TOKEN_PREFIX): p for key, p in active.items()}
        for key in self._strikes:  # struck during this share: keep ours until reported
            if key in self._penalties:
                penalties.setdefault(key, self._penalties[key])
        self._penalties = penalties
        if self._current != current:
            return  # a new window began meanwhile
        for key, n in pending.items():
            self._pushed[key] = self._pushed.get(key, 0) + n
        for key, total in totals.items():
            self._others[key] = max(0, total - self._pushed.get(key, 0))

    async def run(self) -> None:
        """Share every `sync_interval` seconds until cancelled."""
        await _every(self.sync_interval, self.share, self._errors, f"rate limit {self.name!r}")

    async def close(self) -> None:
        """A last share at shutdown, so other processes count what this one admitted."""
        try:
            await self.share()
        except Exception as exc:  # stopping must not fail because the store is gone
            log.warning("rate limit %r: the last share failed (%s)", self.name, type(exc).__name__)


class SharedClientAuthLimiter:
    """`ostiary.oauth.rate_limits.ClientAuthLimiter` shared between processes through
    `penalties`.

    Two keys per attempt, both hashed (no address or client id is stored): the address with
    the client id, whose failures are a guess at that client's credentials (`max_failures`
    free), and the address alone, which counts the client ids that failed from it (`max_clients`
    free): a sweep over many clients. No key is the client id alone: failures elsewhere never
    lock a client out of its own address. A success forgives its own pair's failures, not the
    address's (one good client must not unlock a sweep)."""

    def __init__(
        self,
        penalties: PenaltyStore,
        *,
        max_failures: int,
        max_clients: int,
        backoff: int,
        backoff_cap: int,
        memory: int,
        sync_interval: float,
        errors: tuple[type[BaseException], ...] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if min(max_failures, max_clients, backoff, backoff_cap, memory) < 1:
            raise ValueError("every client authentication limit must be >= 1")
        if sync_interval <= 0:
            raise ValueError("sync_interval must be > 0")
        self._store = penalties
        self._pair_rule = functools.partial(
            failure, free=max_failures, base=backoff, cap=backoff_cap, memory=memory
        )
        self._address_rule = functools.partial(
            failure, free=max_clients, base=backoff, cap=backoff_cap, memory=memory
        )
        self.sync_interval = sync_interval
        self._errors = _SHARE_ERRORS + errors
        self._clock = clock
        self._waiting: dict[str, Penalty] = {}  # keys that must wait, by store key
        self._remembered: dict[str, int] = {}  # keys that failed here: key -> forget_at

    def wait(self, address: str, client_id: str, *, now: int) -> int:
        if not self._waiting:
            return 0
        address_key, pair_key = _client_auth_keys(address, client_id)
        waits = [
            p.wait(now)
            for p in (self._waiting.get(address_key), self._waiting.get(pair_key))
            if p is not None
        ]
        return max(waits, default=0)

    async def failed(self, address: str, client_id: str, *, now: int) -> ClientAuthWait | None:
        address_key, pair_key = _client_auth_keys(address, client_id)
        pair, began = await self._update(pair_key, self._pair_rule, now)
        self._learn(pair_key, pair, now)
        waits: list[ClientAuthWait] = []
        if began:
            waits.append(ClientAuthWait(seconds=pair.wait(now), by="client", failures=pair.strikes))
        if pair.strikes == 1:  # a client id not seen failing from this address lately
            address_penalty, began = await self._update(address_key, self._address_rule, now)
            self._learn(address_key, address_penalty, now)
            if began:
                waits.append(
                    ClientAuthWait(
                        seconds=address_penalty.wait(now),
                        by="address",
                        failures=address_penalty.strikes,
                    )
                )
        return max(waits, key=lambda wait: wait.seconds, default=None)

    async def _update(
        self, key: str, rule: Callable[..., Penalty], now: int
    ) -> tuple[Penalty, bool]:
        """The key's penalty after this failure, and whether it began a wait: the store had
        none in force when it applied the failure (under its lock, so of the processes that
        fail at once only one begins it)."""
        seen: list[Penalty | None] = []

        def change(current: Penalty | None) -> Penalty:
            seen[:] = [current]  # a store may try again: the last call is the one kept
            return rule(current, at=now)

        penalty = await self._store.update(key, change, now=now)
        began = bool(seen) and penalty.until > now and (seen[0] is None or seen[0].until <= now)
        return penalty, began

    async def succeeded(self, address: str, client_id: str, *, now: int) -> None:
        if not self._remembered and not self._waiting:
            return
        _, pair_key = _client_auth_keys(address, client_id)
        if pair_key in self._remembered or pair_key in self._waiting:
            self._remembered.pop(pair_key, None)
            self._waiting.pop(pair_key, None)
            # a courtesy: a store out of reach must not turn this success into an error
            with contextlib.suppress(*self._errors):
                await self._store.forget(pair_key)

    def _learn(self, key: str, penalty: Penalty, now: int) -> None:
        self._remembered[key] = penalty.forget_at
        if penalty.until > now:
            self._waiting[key] = penalty

    async def refresh(self) -> None:
        """Learn every wait in force. Only the keys that wait are read: under a spray from
        many addresses, most keys have a failure or two remembered and wait for nothing."""
        now = math.floor(self._clock())
        self._waiting = await self._store.active(CLIENT_AUTH_PREFIX, now=now, waiting=True)
        self._remembered = {k: at for k, at in self._remembered.items() if at > now}

    async def run(self) -> None:
        """Refresh every `sync_interval` seconds until cancelled."""
        await _every(self.sync_interval, self.refresh, self._errors, "client authentication limit")


def _client_auth_keys(address: str, client_id: str) -> tuple[str, str]:
    address_hash = hashlib.sha256(address.encode("utf-8", "replace")).hexdigest()[:40]
    pair = hashlib.sha256(f"{address}\n{client_id}".encode("utf-8", "replace")).hexdigest()[:40]
    return f"{CLIENT_AUTH_PREFIX}address:{address_hash}", f"{CLIENT_AUTH_PREFIX}pair:{pair}"


async def _every(
    interval: float,
    work: Callable[[], Awaitable[None]],
    errors: tuple[type[BaseException], ...],
    what: str,
) -> None:
    failing = False
    while True:
        await asyncio.sleep(interval)
        try:
            await work()
        except Exception as exc:  # the loop must outlive any failure: it is the sharing
            if not failing:
                reason = "cannot reach" if isinstance(exc, errors) else "failed to use"
                log.warning(
                    "%s: %s the shared store (%s); this process goes on with what it knows "
                    "and tries again every %gs",
                    what,
                    reason,
                    type(exc).__name__,
                    interval,
                )
            failing = True
        else:
            failing = False
