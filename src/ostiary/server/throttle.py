"""Failed logins throttled per user and per address (OWASP ASVS 2.2.1), in the database so
every server process counts the same failures."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ostiary.oauth.store import ThrottleStore


def _key(kind: str, value: str) -> str:
    # hashed: bounded key size, and the throttle table holds no usernames or addresses
    digest = hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:40]
    return f"login:{kind}:{digest}"


@dataclass(frozen=True, kw_only=True)
class LoginThrottle:
    store: ThrottleStore
    max_failures: int
    window: int

    def _keys(self, username: str, address: str) -> tuple[str, str]:
        return _key("user", username.casefold()), _key("address", address)

    async def is_blocked(self, username: str, address: str, *, now: int) -> bool:
        """True when this user or this address failed too often in the last `window`."""
        user_key, address_key = self._keys(username, address)
        for key in (user_key, address_key):
            if await self.store.count(key, now=now, window=self.window) >= self.max_failures:
                return True
        return False

    async def record_failure(self, username: str, address: str, *, now: int) -> None:
        for key in self._keys(username, address):
            await self.store.hit(key, now=now, window=self.window)

    async def record_success(self, username: str) -> None:
        # the address keeps its count: one good account must not unlock guessing at others
        await self.store.reset(self._keys(username, "")[0])
