"""End-to-end fixtures: a real `ostiary serve` per database backend, seeded through the
`ostiary` command, and a loopback redirect_uri.

`server` is parametrized over SQLite (a file in a temporary folder, the default) and
PostgreSQL (a fresh database in the 127.0.0.1:5432 `test` cluster, dropped afterwards).
A test that watches the consent page takes a user no other test touched (`person`), so
remembered consent never leaks between tests; the rest share one (`regular_person`).
After each test the server's log must show no traceback and no 500.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from e2e_server import (
    SCOPES,
    CallbackServer,
    OstiaryServer,
    Person,
    SignedClient,
    postgres_database,
    postgres_unreachable,
    start_server,
    stop_server,
)

from ostiary.jose.jwk import JWK, JWKSet

BACKENDS = ("sqlite", "postgresql")
FRESH_PEOPLE = 5  # as many as tests that watch the consent page (test_browser.py)
CRASHED = re.compile(r"Traceback \(most recent call last\)|\" 5\d\d\b")


@pytest.fixture(scope="session")
def callback() -> Iterator[CallbackServer]:
    """The redirect_uri every seeded client registers."""
    server = CallbackServer()
    server.start()
    yield server
    server.stop()


@dataclass(frozen=True)
class Seeded:
    """A running server and what the `ostiary` command registered on it."""

    server: OstiaryServer
    public: dict[str, Any]  # code + refresh, no secret (auth method `none`)
    confidential: dict[str, Any]  # code + refresh + client_credentials, client_secret_basic
    regular: Person  # a user for tests that do not care what consent it gave before
    unused: list[Person] = field(default_factory=list)  # made ahead, nobody has used them

    def fresh_person(self) -> Person:
        """A user no test has used. Made in batches, several commands at once, and only
        when a test asks: a pytest-xdist worker that runs no such test pays nothing."""
        if not self.unused:
            batch = [new_person("user") for _ in range(FRESH_PEOPLE)]
            with ThreadPoolExecutor(max_workers=4) as pool:
                made = [pool.submit(self.server.create_user, p.username, p.password) for p in batch]
                for user in made:
                    user.result()
            self.unused.extend(batch)
        return self.unused.pop()


def new_person(prefix: str) -> Person:
    return Person(f"{prefix}-{secrets.token_hex(4)}", secrets.token_urlsafe(12))


@pytest.fixture(scope="session", params=BACKENDS)
def seeded(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    callback: CallbackServer,
) -> Iterator[Seeded]:
    backend: str = request.param
    folder = tmp_path_factory.mktemp(f"ostiary-{backend}")
    with _database_settings(backend) as settings:
        server = start_server(backend, folder, settings)
        try:
            yield _seed(server, callback)
        finally:
            stop_server(server)


def _seed(server: OstiaryServer, callback: CallbackServer) -> Seeded:
    """Register clients and users while the server runs, several commands at once.

    The issue asks that commands work against the live database, and that several
    processes may use it together; seeding in parallel exercises both (and is quicker).
    """
    regular = new_person("regular")
    with ThreadPoolExecutor(max_workers=3) as pool:
        public = pool.submit(
            server.create_client,
            name="E2E Browser App",
            grant_types="authorization_code,refresh_token",
            redirect_uris=callback.redirect_uri,
            scopes=SCOPES,
            public=True,
        )
        confidential = pool.submit(
            server.create_client,
            name="E2E Web App",
            grant_types="authorization_code,refresh_token,client_credentials",
            redirect_uris=callback.redirect_uri,
            scopes=SCOPES,
        )
        pool.submit(server.create_user, regular.username, regular.password).result()
        return Seeded(server, public.result(), confidential.result(), regular)


@pytest.fixture(scope="session")
def _signed_clients() -> dict[str, SignedClient]:
    return {}


@pytest.fixture
def signed_client(
    seeded: Seeded, server: OstiaryServer, _signed_clients: dict[str, SignedClient]
) -> SignedClient:
    """Registered on first use with `ostiary clients create --auth-method private_key_jwt`."""
    if server.base_url not in _signed_clients:
        key = JWK.generate("EC", crv="P-256", alg="ES256", kid=f"k-{secrets.token_hex(4)}")
        jwks = server.folder / "signed-client.jwks"
        jwks.write_text(json.dumps(JWKSet([key.public()]).to_dict()), encoding="utf-8")
        made = server.create_client(
            name="E2E Signed Job",
            grant_types="client_credentials",
            scopes=SCOPES,
            extra=("--auth-method", "private_key_jwt", "--jwks", str(jwks)),
        )
        _signed_clients[server.base_url] = SignedClient(made["client_id"], key)
    return _signed_clients[server.base_url]


@contextmanager
def _database_settings(backend: str) -> Iterator[dict[str, str]]:
    if backend == "sqlite":
        yield {}  # the default: a SQLite file in the working folder
        return
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(f"{reason}; CI starts it (.ci/run)")
    with postgres_database() as url:
        yield {"OSTIARY_DATABASE_URL": url}


@pytest.fixture
def server(seeded: Seeded) -> Iterator[OstiaryServer]:
    """The seeded server; the test fails if the server crashed or answered 5xx meanwhile."""
    server = seeded.server
    start = len(server.log())
    yield server
    assert server.process is not None and server.process.poll() is None, (
        f"ostiary serve exited during the test:\n{server.log_tail()}"
    )
    new = server.log()[start:]
    crash = CRASHED.search(new)
    assert crash is None, f"the server crashed or answered 5xx during the test:\n{new[-6000:]}"


@pytest.fixture
def person(seeded: Seeded, server: OstiaryServer) -> Person:
    """A user no other test has used (`ostiary users create --password-stdin`)."""
    return seeded.fresh_person()


@pytest.fixture
def regular_person(seeded: Seeded, server: OstiaryServer) -> Person:
    """A user shared by the tests that accept whatever consent it already gave."""
    return seeded.regular


@pytest.fixture
def public_client(seeded: Seeded, server: OstiaryServer) -> dict[str, Any]:
    return seeded.public


@pytest.fixture
def confidential_client(seeded: Seeded, server: OstiaryServer) -> dict[str, Any]:
    return seeded.confidential
