"""Databases for the store tests: a fresh PostgreSQL database per test session on
127.0.0.1:5432 (created from the `test` database, dropped at the end, so runs never collide),
and migrated SQLite files copied from one template."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from pathlib import Path
from typing import Final

import asyncpg

from ostiary.store import migrate
from ostiary.store._schema import metadata

# Where the `test` database lives; OSTIARY_TEST_POSTGRES_URL points elsewhere if needed.
ADMIN_URL: Final = os.environ.get(
    "OSTIARY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
TABLES: Final = tuple(table.name for table in metadata.sorted_tables)


def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""

    async def probe() -> None:
        conn = await asyncpg.connect(ADMIN_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL is not reachable at 127.0.0.1:5432 ({type(exc).__name__}: {exc})"
    return None


def database_url(name: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def create_database(prefix: str = "ostiary_test") -> str:
    """A new, empty PostgreSQL database; returns its plain URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return database_url(name)


def drop_database(url: str) -> None:
    name = url.rpartition("/")[2]
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def truncate(url: str) -> None:
    """Empty every table of a migrated PostgreSQL database (DELETE: cheaper than TRUNCATE
    for a handful of rows, and it takes no exclusive locks)."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        # table names from our own metadata, children first for the foreign keys
        deletes = [f'DELETE FROM "{name}"' for name in reversed(TABLES)]  # noqa: S608
        await conn.execute("; ".join(deletes))
    finally:
        await conn.close()


async def reset(url: str) -> None:
    """Make a PostgreSQL database empty again, as if just created (no schema, no version)."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


def migrated_sqlite_template(folder: Path) -> Path:
    path = folder / "template.db"
    asyncio.run(migrate(f"sqlite:///{path}"))
    return path


def copy_sqlite(template: Path, folder: Path) -> str:
    """A migrated SQLite database of its own, as a plain URL."""
    path = folder / "ostiary.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
