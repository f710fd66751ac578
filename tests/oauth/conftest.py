"""Fixtures for protocol-core tests: a `Context` on `MemoryStore` with a settable clock.

Stable names other test modules build on: `clock`, `config`, `store`, `keyring`, `passwords`,
`ctx`, `client_factory`, `user_factory`.
"""

from __future__ import annotations

from typing import Any

import pytest
from core_context import (
    ISSUER,
    PASSWORD,
    ApiFactory,
    ClientFactory,
    Clock,
    Pbkdf2Hasher,
    StaticKeyRing,
    UserFactory,
)

from ostiary.jose.jwk import JWK
from ostiary.oauth.config import ServerConfig
from ostiary.oauth.context import Context
from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.models import Api, Client, User


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def es256_key() -> JWK:
    return JWK.generate("EC", crv="P-256", alg="ES256", kid="test-es256")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config() -> ServerConfig:
    return ServerConfig(issuer=ISSUER)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def keyring(es256_key: JWK) -> StaticKeyRing:
    return StaticKeyRing(es256_key)


@pytest.fixture
def passwords() -> Pbkdf2Hasher:
    return Pbkdf2Hasher()


@pytest.fixture
def ctx(
    config: ServerConfig,
    store: MemoryStore,
    keyring: StaticKeyRing,
    passwords: Pbkdf2Hasher,
    clock: Clock,
) -> Context:
    return Context(config=config, store=store, keys=keyring, passwords=passwords, clock=clock)


@pytest.fixture
def client_factory(store: MemoryStore, clock: Clock) -> ClientFactory:
    """`await client_factory(**fields)`: store and return a `Client`.

    Defaults: a public client `app-N` with one https redirect URI, the code and refresh
    grants, and the scopes `read write`. Any `Client` field may be overridden.
    """
    counter = iter(range(1, 1_000_000))

    async def make(**fields: Any) -> Client:
        n = next(counter)
        values: dict[str, Any] = {
            "client_id": f"app-{n}",
            "name": f"App {n}",
            "auth_method": "none",
            "redirect_uris": ("https://app.example/callback",),
            "scopes": frozenset({"read", "write"}),
            "created_at": clock.now,
        }
        values.update(fields)
        client = Client(**values)
        await store.clients.add(client)
        return client

    return make


@pytest.fixture
def api_factory(store: MemoryStore, clock: Clock) -> ApiFactory:
    """`await api_factory("https://notes.example", scopes={"read"})`: register APIs
    (RFC 8707 resources); the default scopes are the default client's, `read write`."""

    async def make(*identifiers: str, scopes: frozenset[str] | set[str] = frozenset()) -> None:
        for identifier in identifiers:
            api = Api(
                identifier=identifier,
                scopes=frozenset(scopes or {"read", "write"}),
                created_at=clock.now,
            )
            await store.apis.add(api)

    return make


@pytest.fixture
def user_factory(store: MemoryStore, passwords: Pbkdf2Hasher, clock: Clock) -> UserFactory:
    """`await user_factory(username="alice", password="...")`: store and return a `User`."""
    counter = iter(range(1, 1_000_000))

    async def make(username: str = "", password: str = PASSWORD) -> User:
        n = next(counter)
        user = User(
            user_id=f"user-{n}",
            username=username or f"user{n}",
            password_hash=passwords.hash(password),
            created_at=clock.now,
        )
        await store.users.add(user)
        return user

    return make
