"""The databases the server-command tests run on: PostgreSQL beside `test` when it is
reachable, and a direct look into a database as the server would see it."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg  # type: ignore[import-untyped]

from ostiary.oauth.store import Store
from ostiary.store import open_store

T = TypeVar("T")

PG_ADMIN_URL = os.environ.get(
    "OSTIARY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def postgres_unreachable() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(PG_ADMIN_URL), timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({type(exc).__name__}: {exc})"
    return None


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql://", "postgres://", 1)


async def admin(statement: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(PG_ADMIN_URL), timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@dataclass(frozen=True)
class PostgresDatabases:
    """Makes throwaway databases beside `test` and drops them at the end of the session."""

    made: list[str]

    def create(self) -> str:
        name = f"ostiary_cli_{secrets.token_hex(6)}"
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
        self.made.append(name)
        return f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"


async def empty_postgres(url: str) -> None:
    """Delete every row but the schema version's (the table with a `version_num` column)."""
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables t "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND NOT EXISTS ("
            "SELECT 1 FROM information_schema.columns c WHERE c.table_schema = 'public' "
            "AND c.table_name = t.table_name AND c.column_name = 'version_num')"
        )
        if rows:
            tables = ", ".join(f'"{row["table_name"]}"' for row in rows)
            await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


def in_store(url: str, action: Callable[[Store], Awaitable[T]]) -> T:
    """Look into the database directly, as the server would see it."""

    async def run() -> T:
        async with open_store(url, pool_size=1) as store:
            return await action(store)

    return asyncio.run(run())
