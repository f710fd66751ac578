"""`migrate`: Alembic to head under a lock, safe when several processes start at once;
`open_store` refuses a database whose schema is not the one it needs."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from store_databases import reset

from ostiary.oauth.models import User
from ostiary.store import engine_url, migrate, open_store
from ostiary.store._migrate import alembic_config, head_revision
from ostiary.store._schema import VERSION_TABLE, metadata

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
PROCESSES = 4


@pytest.fixture
def fresh_url(fresh_database_url: str) -> str:
    return fresh_database_url


async def _on(url: str, work: Any) -> Any:
    """Run `work(sync_connection)` in one committed transaction on the database at `url`."""
    engine = create_async_engine(engine_url(url))
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


def _schema_drift(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return list(compare_metadata(context, metadata))


def _revision(connection: Connection) -> list[str]:
    return list(
        connection.execute(text("SELECT version_num FROM ostiary_schema_version")).scalars()
    )


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _assert_at_head(url: str) -> None:
    assert await _on(url, _revision) == [head_revision()]
    assert await _on(url, _schema_drift) == []
    async with open_store(url) as store:
        assert await store.clients.list() == []


async def test_migrate_creates_the_tables_the_code_uses_then_changes_nothing(
    fresh_url: str,
) -> None:
    await migrate(fresh_url)
    await _assert_at_head(fresh_url)
    assert await _on(fresh_url, _tables) == {*metadata.tables, VERSION_TABLE}
    async with open_store(fresh_url) as store:
        await store.users.add(User(user_id="u1", username="alice", password_hash="h"))
    await migrate(fresh_url)
    async with open_store(fresh_url) as store:
        assert [u.username for u in await store.users.list()] == ["alice"]
    await _assert_at_head(fresh_url)


async def test_concurrent_migrations_in_one_process(fresh_url: str) -> None:
    await asyncio.gather(*(migrate(fresh_url) for _ in range(8)))
    await _assert_at_head(fresh_url)


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from ostiary.store import migrate
    print("ready", flush=True)
    sys.stdin.readline()  # the barrier: every process starts migrating at the same moment
    asyncio.run(migrate(sys.argv[1]))
    print("done", flush=True)
    """
)


def test_concurrent_migrations_from_several_processes(fresh_url: str) -> None:
    """N processes released together on a fresh database: one creates the schema, the rest
    wait on the lock and find it at head; none fails."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, fresh_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outcomes = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert [child.returncode for child in children] == [0] * PROCESSES, outcomes
    assert [out for out, _ in outcomes] == ["done\n"] * PROCESSES
    asyncio.run(_assert_at_head(fresh_url))


async def test_downgrade_then_a_failed_migration_leaves_nothing_behind(fresh_url: str) -> None:
    """The DDL runs in one transaction: a clash on the last table undoes the first ones."""
    await migrate(fresh_url)
    await _on(fresh_url, lambda c: command.downgrade(alembic_config(c), "base"))
    assert await _on(fresh_url, _tables) == {VERSION_TABLE}
    await _on(fresh_url, lambda c: c.execute(text("CREATE TABLE audit_events (x INTEGER)")))
    with pytest.raises(Exception, match="audit_events"):
        await migrate(fresh_url)
    assert await _on(fresh_url, _tables) == {"audit_events", VERSION_TABLE}
    assert await _on(fresh_url, _revision) == []
    await _on(fresh_url, lambda c: c.execute(text("DROP TABLE audit_events")))
    await migrate(fresh_url)
    await _assert_at_head(fresh_url)


async def test_open_store_refuses_a_schema_it_was_not_built_for(fresh_url: str) -> None:
    with pytest.raises(RuntimeError, match="ostiary migrate"):
        await open_store(fresh_url)  # never migrated
    await migrate(fresh_url)
    update = "UPDATE ostiary_schema_version SET version_num='9'"
    await _on(fresh_url, lambda c: c.execute(text(update)))
    with pytest.raises(RuntimeError, match="revision 9"):
        await open_store(fresh_url)  # from a newer Ostiary


async def test_open_store_does_not_create_a_missing_sqlite_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="ostiary migrate"):
        await open_store(f"sqlite:///{tmp_path / 'absent.db'}")
    assert list(tmp_path.iterdir()) == []


async def test_sqlite_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "ostiary.db"
    await migrate(f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_sqlite_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="folder for the SQLite database does not exist"):
        await migrate(f"sqlite:///{tmp_path / 'missing' / 'ostiary.db'}")
    assert list(tmp_path.iterdir()) == []


async def test_unknown_database_refused_before_any_io() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        await migrate("mysql://root@127.0.0.1/ostiary")


async def test_migrating_postgresql_writes_no_file_in_the_working_folder(
    postgres_fresh_session_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL database name must never become an empty SQLite file in the cwd."""
    await reset(postgres_fresh_session_url)
    monkeypatch.chdir(tmp_path)
    await migrate(postgres_fresh_session_url)
    assert list(tmp_path.iterdir()) == []
