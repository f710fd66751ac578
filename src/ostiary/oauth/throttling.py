"""Password guessing throttled per user and per address (OWASP ASVS 2.2.1), with exponential
back-off, for the login page and the password grant alike (one budget for both doors).

Each key (a user, an address) counts failed attempts. The first `login_max_failures` cost
nothing; from then on each further attempt must wait, after the previous one, `login_window`
seconds doubled for every failure past the budget (15 min, 30 min, 1 h, ...) up to
`login_backoff_cap` (a day). Failures are remembered for `MEMORY` caps (the waits before the
cap add up to more than one), so a patient guesser's wait keeps growing up to the cap and stays
there, instead of starting over every window.

An attempt is charged to its keys before the password is checked: a burst of parallel
guesses each use up a try, and only as many as the budget allows reach the slow hash.
"""

from __future__ import annotations

from collections.abc import Sequence

from .config import ServerConfig
from .store import ThrottleStore

_MAX_DOUBLINGS = 30  # 2**30 windows is past any cap: stop growing the integer
MEMORY = 8  # failures are remembered this many `login_backoff_cap`s


def memory(config: ServerConfig) -> int:
    """How long a failure counts (seconds)."""
    return MEMORY * config.login_backoff_cap


def backoff(failures: int, config: ServerConfig) -> int:
    """Seconds a key with `failures` recent failures must wait after its latest one."""
    past = failures - config.login_max_failures
    if past < 0:
        return 0
    wait: int = config.login_window * 2 ** min(past, _MAX_DOUBLINGS)
    return min(config.login_backoff_cap, wait)


async def wait_for(store: ThrottleStore, key: str, *, now: int, config: ServerConfig) -> int:
    """Seconds before `key` may try again (0: it may try now)."""
    failures, latest = await store.recent(key, now=now, window=memory(config))
    if latest is None:
        return 0
    return max(0, latest + backoff(failures, config) - now)


async def take_attempt(
    store: ThrottleStore, keys: Sequence[str], *, now: int, config: ServerConfig
) -> int:
    """Charge one attempt to every key: 0 when it may go on to the password check, else the
    seconds to wait (for a `Retry-After`). A refused attempt changes no counter unless it
    lost a race, where it stays charged."""
    seen: list[int] = []
    for key in keys:
        failures, latest = await store.recent(key, now=now, window=memory(config))
        if latest is not None and now < latest + backoff(failures, config):
            return latest + backoff(failures, config) - now
        seen.append(failures)
    allowed = True
    for key, failures in zip(keys, seen, strict=True):
        count = await store.hit(key, now=now, window=memory(config))
        # Parallel attempts all saw `failures`: inside the budget they share what is left of
        # it; past it only the first one after the wait may try.
        if count > max(failures + 1, config.login_max_failures):
            allowed = False
    if allowed:
        return 0
    return max([1, *(backoff(f + 1, config) for f in seen)])


async def forgive(store: ThrottleStore, key: str, *, now: int) -> None:
    """Give back the attempt charged at `now` (a success that must not count as a failure)."""
    await store.forgive(key, at=now)
