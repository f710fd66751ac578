"""The parts of a test `Context`: a settable clock, a one-key key ring, a fast password hash.

Imported by `conftest.py` (fixtures) and by tests that build contexts of their own, such as
hypothesis tests, which must not share function-scoped fixtures between examples.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable
from typing import Any, Protocol

from ostiary.jose.jwk import JWK, JWKSet
from ostiary.oauth.config import ServerConfig
from ostiary.oauth.context import Context
from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.models import Client, User

ISSUER = "https://auth.example"
START = 1_700_000_000  # a fixed "now" for every test
PASSWORD = "correct horse battery"  # what `user_factory` users sign in with by default


class Clock:
    """A clock tests set and advance by hand; `ctx.now()` reads it."""

    def __init__(self, now: int = START) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += seconds


class StaticKeyRing:
    """A `KeyRing` holding one key that signs by default (ES256) and is published, plus one
    key per other algorithm, made when first asked for (ID tokens, UserInfo JWTs)."""

    def __init__(self, key: JWK) -> None:
        self.key = key
        self.others: dict[str, JWK] = {}

    async def signing_key(self, alg: str | None = None) -> JWK:
        if alg is None or alg == self.key.alg:
            return self.key
        if alg not in self.others:
            kty = {"RS256": ("RSA", {"size": 2048}), "EdDSA": ("OKP", {"crv": "Ed25519"})}
            kind, options = kty.get(alg, ("EC", {"crv": "P-256"}))
            self.others[alg] = JWK.generate(kind, alg=alg, kid=f"k-{alg}", **options)
        return self.others[alg]

    async def published(self) -> JWKSet:
        return JWKSet([self.key.public(), *(key.public() for key in self.others.values())])


class Pbkdf2Hasher:
    """A fast, real password hash for tests (production uses Argon2id in `server/`)."""

    iterations = 1000

    def hash(self, password: str) -> str:
        salt = secrets.token_hex(8)
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), self.iterations)
        return f"pbkdf2${salt}${digest.hex()}"

    def verify(self, password_hash: str, password: str) -> bool:
        scheme, _, rest = password_hash.partition("$")
        salt, _, expected = rest.partition("$")
        if scheme != "pbkdf2" or not expected:
            return False
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), self.iterations)
        return hmac.compare_digest(digest.hex(), expected)


class ApiFactory(Protocol):
    def __call__(
        self, *identifiers: str, scopes: frozenset[str] | set[str] = ...
    ) -> Awaitable[None]: ...


class ClientFactory(Protocol):
    def __call__(self, **fields: Any) -> Awaitable[Client]: ...


class UserFactory(Protocol):
    def __call__(self, username: str = ..., password: str = ...) -> Awaitable[User]: ...


def make_context(**config: Any) -> Context:
    """A fresh `Context` outside pytest fixtures (for hypothesis tests, which reuse nothing)."""
    return Context(
        config=ServerConfig(issuer=ISSUER, **config),
        store=MemoryStore(),
        keys=StaticKeyRing(JWK.generate("EC", crv="P-256", alg="ES256", kid="k")),
        passwords=Pbkdf2Hasher(),
        clock=Clock(),
    )
