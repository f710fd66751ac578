"""What every protocol function receives: config, storage, keys, clock, password check."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ostiary.jose.jwk import JWK, JWKSet

from .config import ServerConfig
from .rate_limits import ClientAuthLimiter, RateLimiter
from .store import Store, ThrottleStore


class KeyRing(Protocol):
    """The server's signing keys, decrypted and ready (implemented in `server/`)."""

    async def signing_key(self, alg: str | None = None) -> JWK:
        """The key that signs `alg` now (private, with `kid` and `alg`); the server's
        default algorithm (`ServerConfig.signing_alg`) when None."""

    async def published(self) -> JWKSet:
        """Every public key a verifier may need: next, current and retired-but-unexpired."""


class PasswordHasher(Protocol):
    """Argon2id in production (`server/passwords.py`); the core never sees the algorithm."""

    def hash(self, password: str) -> str: ...
    def verify(self, password_hash: str, password: str) -> bool:
        """True when the password matches; never raises for a wrong password."""


def _now() -> int:
    return int(time.time())


@dataclass(frozen=True, kw_only=True)
class Context:
    config: ServerConfig
    store: Store
    keys: KeyRing
    passwords: PasswordHasher
    clock: Callable[[], int] = field(default=_now)
    token_limits: RateLimiter | None = None  # per client at the token endpoint; None: none
    client_auth_limits: ClientAuthLimiter | None = None  # failed client auth; None: none
    throttle: ThrottleStore | None = None  # failed-guess counters elsewhere (Redis); None: store

    def now(self) -> int:
        return self.clock()

    @property
    def throttles(self) -> ThrottleStore:
        """Where failed guesses are counted: `throttle` when set, else the store's."""
        return self.throttle if self.throttle is not None else self.store.throttle
