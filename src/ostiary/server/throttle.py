"""Failed logins throttled per user and per address with exponential back-off
(`ostiary.oauth.throttling`), in the database so every server process counts the same
failures, and shared with the password grant."""

from __future__ import annotations

from dataclasses import dataclass

from ostiary.oauth import throttling
from ostiary.oauth.config import ServerConfig
from ostiary.oauth.grants.password import throttle_key
from ostiary.oauth.store import ThrottleStore


@dataclass(frozen=True, kw_only=True)
class LoginThrottle:
    store: ThrottleStore
    config: ServerConfig

    def _keys(self, username: str, address: str) -> tuple[str, str]:
        # the password grant's counters too: the two doors share one budget of guesses
        return throttle_key("user", username.casefold()), throttle_key("address", address)

    async def take_attempt(self, username: str, address: str, *, now: int) -> int:
        """Charge this attempt to the user and the address before the password is checked:
        0 when it may go on, else the seconds to wait. Counted first, parallel guesses each
        use up a try (checked, then counted after the slow hash, a burst would all pass)."""
        keys = self._keys(username, address)
        return await throttling.take_attempt(self.store, keys, now=now, config=self.config)

    async def record_failure(self, username: str, address: str, *, now: int) -> None:
        """Count a failure without an attempt (what `take_attempt` charges, unconditionally)."""
        for key in self._keys(username, address):
            await self.store.hit(key, now=now, window=throttling.memory(self.config))

    async def record_success(self, username: str, address: str, *, now: int) -> None:
        user_key, address_key = self._keys(username, address)
        await self.store.reset(user_key)
        # the address keeps its earlier failures (one good account must not unlock guessing
        # at others), but not this attempt, which was charged before it succeeded
        await throttling.forgive(self.store, address_key, now=now)
