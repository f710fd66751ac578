"""Request limits the protocol core consults, and the back-off rules they share.

Two limits guard the back-channel endpoints (token, revocation, introspection):

- `RateLimiter`, per client at the token endpoint: a budget of requests per fixed window;
  a client that keeps going past it is refused for longer each time (`strike`).
- `ClientAuthLimiter`, failed client authentication per address (`failure`): a few free
  failures, then an exponentially growing wait before the next attempt is even checked.

The core only asks; counting, sharing between processes and choosing the limits are the
server's (`ostiary.server.rate_limit`). Asking never does I/O, so the token endpoint's cost
does not grow with it. What is shared between processes is a `Penalty` per key, changed
only through the pure rules below, so every store (memory, SQL, Redis) has one semantics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal, Protocol

_MAX_DOUBLINGS: Final = 30  # 2**30 is past any cap: stop growing the integer


class RateLimiter(Protocol):
    def take(self, key: str, *, now: float) -> int:
        """Count one request for `key`: 0 when it may proceed, else the whole seconds until
        it may try again (for `Retry-After`). Never does I/O."""


class ClientAuthLimiter(Protocol):
    def wait(self, address: str, client_id: str, *, now: int) -> int:
        """Seconds before a client authentication from `address` naming `client_id` may be
        checked (0: now). Never does I/O."""

    async def failed(self, address: str, client_id: str, *, now: int) -> ClientAuthWait | None:
        """Count one failed client authentication (shared at once with every process); the
        wait it began, if it began one (not one already in force, nor one it lengthened)."""

    async def succeeded(self, address: str, client_id: str, *, now: int) -> None:
        """`client_id` proved itself from `address`: its own failures there are forgiven."""


@dataclass(frozen=True, kw_only=True)
class ClientAuthWait:
    """A wait that one failed client authentication began: what the audit log is told, once
    per wait rather than once per refused request."""

    seconds: int
    by: Literal["client", "address"]  # the address with this client id, or the address alone
    failures: int  # the failures it counts (for `by="address"`: the client ids that failed)


@dataclass(frozen=True, kw_only=True)
class Penalty:
    """What a shared limit remembers about one key that went past its budget."""

    strikes: int  # the token limit: windows in a row past the budget; client auth: failures
    struck_at: int  # the latest strike (the token limit: the start of its window)
    until: int  # refused until then (Unix seconds)
    forget_at: int  # from then on it changes no answer: the store may drop it

    def wait(self, now: float) -> int:
        """Whole seconds left to wait at `now` (0: none)."""
        return max(0, math.ceil(self.until - now))


def strike(previous: Penalty | None, *, at: int, window: int, cap: int) -> Penalty:
    """The penalty of a client that went past its budget at `at` (fixed windows of `window`
    seconds), given the one it had.

    The first strike refuses the client until its window ends (the budget renews). A client
    that goes past its budget again within one window after its penalty ended did not slow
    down: strike `n` stretches the refusal to `2**(n-1)` windows from the start of the window
    it struck in (1, 2, 4, 8, ...), the stretch beyond the first window at most `cap`
    seconds. A window without a strike after the penalty forgets it. A strike during a
    penalty, or a second report of a window's strike (by another process), changes nothing.
    """
    start = at - at % window
    if previous is not None and at < previous.forget_at:
        if at < previous.until or start <= previous.struck_at:
            return previous
        strikes = previous.strikes + 1
    else:
        strikes = 1
    extra = min(cap, window * (2 ** min(strikes - 1, _MAX_DOUBLINGS) - 1))
    until = start + window + extra
    return Penalty(strikes=strikes, struck_at=start, until=until, forget_at=until + window)


def backoff(failures: int, *, free: int, base: int, cap: int) -> int:
    """Seconds to wait after the latest of `failures`: none while there are fewer than
    `free`; from the `free`-th on, `base` doubled for each failure past it, at most `cap`."""
    past = failures - free
    if past < 0:
        return 0
    wait: int = base * 2 ** min(past, _MAX_DOUBLINGS)
    return min(cap, wait)


def failure(
    previous: Penalty | None, *, at: int, free: int, base: int, cap: int, memory: int
) -> Penalty:
    """The penalty of a key after one more failure at `at`: failures are remembered
    `memory` seconds after the latest one (then the count starts over), and the next
    attempt must wait `backoff(failures)` after the latest."""
    if previous is not None and at < previous.forget_at:
        failures = previous.strikes + 1
        latest = max(at, previous.struck_at)
    else:
        failures, latest = 1, at
    until = latest + backoff(failures, free=free, base=base, cap=cap)
    return Penalty(strikes=failures, struck_at=latest, until=until, forget_at=latest + memory)
