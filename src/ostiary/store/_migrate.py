"""Schema migrations: Alembic revisions in `migrations/versions/`, run to head under a lock.

Several processes may start against one database at once (N workers, M hosts). Each takes a
database-wide lock before Alembic looks at the schema, so exactly one applies each revision
and the rest find the schema already at head: PostgreSQL's transaction-scoped advisory lock,
or SQLite's write lock (`BEGIN IMMEDIATE`). DDL runs inside that same transaction on both,
so a failed migration leaves nothing half done.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import String, column, inspect, select, table, text
from sqlalchemy.engine import Connection

from ._database import Database, connect, create_sqlite_file
from ._schema import VERSION_TABLE
from ._urls import parse_database_url

MIGRATIONS: Final = Path(__file__).resolve().with_name("migrations")
# pg_advisory_xact_lock key: the bytes "ostiary\x01" as a signed 64-bit integer.
MIGRATION_LOCK_KEY: Final = int.from_bytes(b"ostiary\x01", "big", signed=True)
MIGRATION_WAIT_MS: Final = 120_000  # a SQLite migrator waits this long for another one

# Alembic's `context` and `op` are module-level proxies: two migrations interleaving on one
# event loop (two databases at once) would drive each other's. One at a time per loop.
_alembic_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def migrate(database_url: str) -> None:
    """Bring the database's schema to the newest revision; safe to run from many processes."""
    url = parse_database_url(database_url)
    create_sqlite_file(url)
    # Waiting for another process's migration (its lock) is expected here, not a fault.
    db = connect(
        url, pool_size=1, busy_timeout_ms=MIGRATION_WAIT_MS, timeout=MIGRATION_WAIT_MS / 1000
    )
    try:
        await upgrade(db)
    finally:
        await db.close()


async def upgrade(db: Database) -> None:
    """Run Alembic to head in one write transaction holding the migration lock."""

    def work(connection: Connection) -> None:
        if db.is_postgresql:  # on SQLite, the write transaction (BEGIN IMMEDIATE) is the lock
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": MIGRATION_LOCK_KEY})
        command.upgrade(alembic_config(connection), "head")

    async with _alembic_turn():
        await db.write(work, bulk=True)


async def current_revision(db: Database) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    return await db.read(_current_revision)


@functools.cache
def head_revision() -> str:
    """The newest revision this version of Ostiary knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("the migrations folder has no revisions")
    return head


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic `Config` for our migrations; `migrations/env.py` reads `connection`."""
    config = Config()
    # ConfigParser interpolation: a literal % in the install path must be doubled
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _current_revision(connection: Connection) -> str | None:
    # Read directly: an Alembic MigrationContext would log on every open.
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    query = select(column("version_num", String)).select_from(table(VERSION_TABLE))
    found = connection.execute(query).scalars().all()
    return found[0] if len(found) == 1 else None


def _alembic_turn() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _alembic_turns.get(loop)
    if lock is None:
        lock = _alembic_turns[loop] = asyncio.Lock()
    return lock
