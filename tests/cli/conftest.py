"""Fixtures for the `ostiary` command tests: `main()` in-process, keys on disk, and the
server's database (SQLite in an empty working folder, or PostgreSQL)."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_databases import PostgresDatabases, admin, empty_postgres, postgres_unreachable
from cli_run import KeyFiles, Result, Run, write_key

from ostiary.cli import main
from ostiary.jose.jwk import JWK
from ostiary.store import migrate


@pytest.fixture
def ostiary(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """Call `main(args)` as the console script would; `stdin=` feeds bytes to stdin."""

    def run(*args: str, stdin: bytes | None = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        capsys.readouterr()
        status = main(list(args))
        captured = capsys.readouterr()
        return Result(status, captured.out, captured.err)

    return run


@pytest.fixture
def es256(tmp_path: Path) -> KeyFiles:
    """An ES256 key (kid "es-1") as private and public JWK files."""
    return write_key(tmp_path, "es256", JWK.generate("EC", crv="P-256", alg="ES256", kid="es-1"))


@pytest.fixture
def other_es256(tmp_path: Path) -> KeyFiles:
    """A second, unrelated ES256 key with the same kid: it must never verify es256's tokens."""
    return write_key(tmp_path, "other", JWK.generate("EC", crv="P-256", alg="ES256", kid="es-1"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(reason)
    databases = PostgresDatabases([])
    yield databases
    for name in reversed(databases.made):
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_session_url(postgres: PostgresDatabases) -> str:
    """A migrated PostgreSQL database for the in-process tests, emptied before each one."""
    url = postgres.create()
    asyncio.run(migrate(url))
    return url


@pytest.fixture
def working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder and no OSTIARY_* settings of the caller's."""
    for name in list(os.environ):
        if name.startswith("OSTIARY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, working_folder: Path
) -> str:
    """The database the commands use: SQLite by default (no settings), or PostgreSQL set
    through OSTIARY_DATABASE_URL as an operator would."""
    if request.param == "sqlite":
        return "sqlite:///ostiary.db"
    url: str = request.getfixturevalue("postgres_session_url")
    asyncio.run(empty_postgres(url))
    monkeypatch.setenv("OSTIARY_DATABASE_URL", url)
    return url
