"""The server under test: settings in a temporary folder, the app's lifespan running, an
httpx client on `ASGITransport`, and helpers that seed clients and users and walk a person
through login and consent by reading the pages' forms."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import asyncpg
import httpx
import pytest
from openapi_check import check_response
from starlette.applications import Starlette

from ostiary.oauth.client_secrets import generate_client_secret, hash_client_secret
from ostiary.oauth.models import Client, User
from ostiary.oauth.store import Store
from ostiary.server.app import create_app
from ostiary.server.passwords import Argon2PasswordHasher
from ostiary.server.runtime import Runtime
from ostiary.server.settings import Settings

ISSUER = "http://127.0.0.1:8000"
START = 1_900_000_000
ADDRESS = "203.0.113.7"
REDIRECT_URI = "https://app.example/callback"
PASSWORD = "correct horse battery staple"
PG_ADMIN_DSN = "postgres://postgres@127.0.0.1:5432/test"


class Clock:
    """A clock the test moves by hand (no sleeps)."""

    def __init__(self, now: int = START) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += seconds


def fast_hasher() -> Argon2PasswordHasher:
    return Argon2PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def make_settings(folder: Path, **values: Any) -> Settings:
    """Settings with the secret and the SQLite file in `folder`, never in the working folder."""
    values.setdefault("key_file", None)
    # logout tokens are sent when a test says so (`runtime.logouts.deliver_due()`), by the
    # fixed clock, not by a background task racing it
    values.setdefault("logout_delivery_interval", 0)
    values.setdefault("purge_interval", 0)  # likewise the purge (`Purger.run_once()`)
    values.setdefault("database_url", f"sqlite:///{folder / 'ostiary.db'}")
    if values["key_file"] is None:
        key_file = folder / "ostiary.key"
        if not key_file.exists():  # one secret per folder, like one server's deployment
            key_file.write_text(secrets.token_urlsafe(32) + "\n")
            key_file.chmod(0o600)
        values["key_file"] = key_file
    return Settings(**values)


# -- databases -----------------------------------------------------------------------------


async def _pg_admin(statement: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def postgres_unreachable() -> str | None:
    try:
        await _pg_admin("SELECT 1")
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL at 127.0.0.1:5432 is not reachable ({type(exc).__name__})"
    return None


@contextlib.asynccontextmanager
async def database_url_for(backend: str, folder: Path) -> AsyncIterator[str]:
    """A database URL for `backend`; PostgreSQL gets a fresh database, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'ostiary.db'}"
        return
    reason = await postgres_unreachable()
    if reason is not None:
        pytest.skip(f"{reason}; CI starts it")
    name = f"ostiary_server_{secrets.token_hex(6)}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the app -------------------------------------------------------------------------------


@dataclass
class Served:
    app: Starlette
    http: httpx.AsyncClient
    clock: Clock

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    @property
    def store(self) -> Store:
        return self.runtime.ctx.store

    def browser(self, address: str = ADDRESS) -> httpx.AsyncClient:
        """Another user agent with its own cookie jar (close it, or use `async with`)."""
        return _client(self.app, address, str(self.http.base_url))

    async def add_user(self, username: str | None = None, password: str = PASSWORD) -> User:
        user = User(
            user_id=f"u_{secrets.token_hex(6)}",
            username=username or f"user-{secrets.token_hex(4)}",
            password_hash=self.runtime.passwords.hash(password),
            created_at=self.clock(),
        )
        await self.store.users.add(user)
        return user

    async def add_client(self, **values: Any) -> tuple[Client, str | None]:
        """A client (confidential, client_secret_basic unless told); returns it and its secret."""
        secret: str | None = None
        values.setdefault("auth_method", "client_secret_basic")
        if values["auth_method"] in ("client_secret_basic", "client_secret_post"):
            secret = generate_client_secret()
            values["secret_hash"] = hash_client_secret(secret)
        values.setdefault("client_id", f"c_{secrets.token_hex(6)}")
        values.setdefault("name", "Notes App")
        values.setdefault("redirect_uris", (REDIRECT_URI,))
        values.setdefault(
            "grant_types",
            frozenset({"authorization_code", "refresh_token", "client_credentials"}),
        )
        values.setdefault("scopes", frozenset({"read", "write", "profile"}))
        values.setdefault("created_at", self.clock())
        client = Client(**values)
        await self.store.clients.add(client)
        return client, secret


def _client(app: Starlette, address: str, base_url: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    return httpx.AsyncClient(
        transport=transport,
        base_url=base_url,
        follow_redirects=False,
        event_hooks={"response": [_matches_the_description]},
    )


async def _matches_the_description(response: httpx.Response) -> None:
    """Every response a server test sees must be one the OpenAPI description allows."""
    await response.aread()
    check_response(response)


@contextlib.asynccontextmanager
async def serve(
    settings: Settings,
    *,
    clock: Clock,
    hasher: Argon2PasswordHasher,
    store: Store | None = None,
) -> AsyncIterator[Served]:
    """The app with its lifespan running (ASGITransport does not run it)."""
    app = create_app(settings, store=store, clock=clock, passwords=hasher)
    async with (
        app.router.lifespan_context(app),
        _client(app, ADDRESS, settings.effective_issuer) as http,
    ):
        yield Served(app, http, clock)


# -- a person in a browser -----------------------------------------------------------------


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(32)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


def authorize_params(client: Client, pkce: Pkce, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uris[0],
        "scope": "read write",
        "state": "st-" + secrets.token_hex(4),
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return params


def authorize_url(client: Client, pkce: Pkce, **extra: str) -> str:
    return "/authorize?" + urlencode(authorize_params(client, pkce, **extra))


@dataclass
class Form:
    action: str
    method: str
    inputs: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(attr.get("action", ""), attr.get("method", "get").lower()))
        elif self.forms and "name" in attr:
            kind = attr.get("type", "submit" if tag == "button" else "text")
            if kind == "submit":
                self.forms[-1].buttons.append((attr["name"], attr.get("value", "")))
            elif tag == "input":
                self.forms[-1].inputs[attr["name"]] = attr.get("value", "")


def form_of(page: httpx.Response) -> Form:
    parser = _Forms()
    parser.feed(page.text)
    assert len(parser.forms) == 1, page.text
    return parser.forms[0]


async def submit(http: httpx.AsyncClient, page: httpx.Response, **values: str) -> httpx.Response:
    form = form_of(page)
    data = {**form.inputs, **values}
    return await http.post(form.action, data=data)


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query, keep_blank_values=True)


async def sign_in_and_allow(
    http: httpx.AsyncClient, url: str, username: str, password: str = PASSWORD
) -> httpx.Response:
    """GET the authorization URL, fill in the login form, allow on the consent page (if
    asked); return the final redirect to the client."""
    page = await http.get(url)
    assert page.status_code == 200, page.text
    response = await submit(http, page, username=username, password=password)
    if response.status_code == 200:
        assert ("decision", "allow") in form_of(response).buttons
        response = await submit(http, response, decision="allow")
    assert response.status_code == 303, response.text
    return response
