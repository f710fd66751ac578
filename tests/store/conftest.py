"""Fixtures for the store tests: `store` runs a test on MemoryStore, a SQLite file and a
PostgreSQL database; `database_url` is a migrated, empty SQLite or PostgreSQL database, and
`fresh_database_url` one never migrated.

PostgreSQL tests skip with the reason when 127.0.0.1:5432 is unreachable (CI fails on skips).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from store_databases import (
    copy_sqlite,
    create_database,
    drop_database,
    migrated_sqlite_template,
    postgres_unreachable,
    reset,
    truncate,
)

from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.store import Store
from ostiary.store import migrate, open_store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_server() -> None:
    """Skip when PostgreSQL is not running (CI runs it, and turns the skip into a failure)."""
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_session_url(postgres_server: None) -> Iterator[str]:
    """A migrated PostgreSQL database of this test session (one per xdist worker)."""
    url = create_database()
    try:
        asyncio.run(migrate(url))
        yield url
    finally:
        drop_database(url)


@pytest.fixture(scope="session")
def postgres_fresh_session_url(postgres_server: None) -> Iterator[str]:
    """A PostgreSQL database of this session for tests that need one never migrated:
    `fresh_database_url` empties it before each (dropping databases forces checkpoints)."""
    url = create_database("ostiary_test_fresh")
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database nobody has migrated: a SQLite file not yet created, or an empty database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    url: str = request.getfixturevalue("postgres_fresh_session_url")
    asyncio.run(reset(url))
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite_template(tmp_path_factory.mktemp("template"))


def _fresh(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return copy_sqlite(request.getfixturevalue("sqlite_template"), tmp_path)
    url: str = request.getfixturevalue("postgres_session_url")
    asyncio.run(truncate(url))
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of this test, as a plain URL."""
    return _fresh(request.param, request, tmp_path)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """What `store` runs on: None for MemoryStore, else a migrated, empty database."""
    return None if request.param == "memory" else _fresh(request.param, request, tmp_path)


@pytest.fixture
async def store(store_url: str | None) -> AsyncIterator[Store]:
    """The same contract on every implementation."""
    if store_url is None:
        yield MemoryStore()
        return
    async with open_store(store_url) as sql_store:
        yield sql_store
