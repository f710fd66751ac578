"""Failed logins throttled per user and per address (OWASP ASVS 2.2.1), in the database so
every server process counts the same failures."""

from __future__ import annotations

from dataclasses import dataclass

from ostiary.oauth.grants.password import throttle_key
from ostiary.oauth.store import ThrottleStore


@dataclass(frozen=True, kw_only=True)
class LoginThrottle:
    store: ThrottleStore
    max_failures: int
    window: int

    def _keys(self, username: str, address: str) -> tuple[str, str]:
        # the password grant's counters too: the two doors share one budget of guesses
        return throttle_key("user", username.casefold()), throttle_key("address", address)

    async def is_blocked(self, username: str, address: str, *, now: int) -> bool:
        """True when this user or this address failed too often in the last `window`."""
        user_key, address_key = self._keys(username, address)
        for key in (user_key, address_key):
            if await self.store.count(key, now=now, window=self.window) >= self.max_failures:
                return True
        return False

    async def take_attempt(self, username: str, *, now: int) -> bool:
        """Count this attempt against the user before the password is checked; False when it
        is over the budget. Counted first, parallel guesses each use up one of the
        `max_failures` (checked, then counted after the slow hash, a burst would all pass)."""
        count = await self.store.hit(self._keys(username, "")[0], now=now, window=self.window)
        return count <= self.max_failures

    async def record_address_failure(self, address: str, *, now: int) -> None:
        """A failed attempt whose user was already counted by `take_attempt`."""
        await self.store.hit(self._keys("", address)[1], now=now, window=self.window)

    async def record_failure(self, username: str, address: str, *, now: int) -> None:
        for key in self._keys(username, address):
            await self.store.hit(key, now=now, window=self.window)

    async def record_success(self, username: str) -> None:
        # the address keeps its count: one good account must not unlock guessing at others
        await self.store.reset(self._keys(username, "")[0])
