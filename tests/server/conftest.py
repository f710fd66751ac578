"""Fixtures for the server tests: settings in a temporary folder, a settable clock, a fast
password hasher, and the app running (lifespan included) behind `httpx.ASGITransport`.

Stable names: `anyio_backend`, `clock`, `settings`, `hasher`, `backend`, `served`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from server_app import (
    ISSUER,
    Clock,
    Served,
    database_url_for,
    fast_hasher,
    make_settings,
    serve,
)

from ostiary.server.passwords import Argon2PasswordHasher
from ostiary.server.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings read `OSTIARY_*` and default to files in the working folder: neither a
    developer's environment nor the checkout may change, or be changed by, a test."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.upper().startswith("OSTIARY_"):
            monkeypatch.delenv(name)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def hasher() -> Argon2PasswordHasher:
    return fast_hasher()


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database URL: a SQLite file, or a fresh PostgreSQL database (dropped afterwards)."""
    async with database_url_for(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, issuer=ISSUER)


@pytest.fixture
async def served(
    backend: str, tmp_path: Path, clock: Clock, hasher: Argon2PasswordHasher
) -> AsyncIterator[Served]:
    """The app on a real SqlStore (SQLite, and PostgreSQL when reachable), lifespan running."""
    settings = make_settings(tmp_path, issuer=ISSUER, database_url=backend)
    async with serve(settings, clock=clock, hasher=hasher) as app:
        yield app
