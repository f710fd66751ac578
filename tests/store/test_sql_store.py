"""What only `SqlStore` promises: races between separate connection pools (as between
worker processes), SQLite's settings, integrity checks, the audit log line, `:memory:`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.exc import IntegrityError
from store_databases import truncate
from test_contract import (
    NOW,
    RACERS,
    make_access,
    make_client,
    make_code,
    make_refresh,
    make_user,
)

import ostiary.store
from ostiary.oauth.models import AuditEvent, Consent, Issuance
from ostiary.store import SqlStore, open_store
from ostiary.store._audit import RECORD_ROWS
from ostiary.store._database import PostgresDatabase
from ostiary.store._fast import BatchInsert
from ostiary.store._schema import revoked_grants

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
POOLS = 5  # separate engines on one database, as N worker processes would have


@pytest.fixture
async def pools(database_url: str) -> AsyncIterator[list[SqlStore]]:
    """Several stores on one database, each with its own connections; c1 and u1 exist."""
    async with AsyncExitStack() as stack:
        stores = [
            await stack.enter_async_context(open_store(database_url, pool_size=4))
            for _ in range(POOLS)
        ]
        await stores[0].clients.add(make_client())
        await stores[0].users.add(make_user())
        yield stores


async def test_code_redeemed_once_across_pools(pools: list[SqlStore]) -> None:
    await pools[0].codes.put(make_code())
    results = await asyncio.gather(
        *(pools[i % POOLS].codes.consume("code-1", now=NOW) for i in range(RACERS))
    )
    assert sum(1 for r in results if r.code is not None and not r.replayed) == 1
    assert sum(1 for r in results if r.replayed) == RACERS - 1


async def test_refresh_rotated_once_across_pools(pools: list[SqlStore]) -> None:
    await pools[0].tokens.add_refresh(make_refresh())
    results = await asyncio.gather(
        *(
            pools[i % POOLS].tokens.rotate_refresh("rt-1", make_refresh(f"next-{i}"), now=NOW)
            for i in range(RACERS)
        )
    )
    statuses = [r.status for r in results]
    assert statuses.count("rotated") == 1
    assert statuses.count("reused") == RACERS - 1
    live = [i for i in range(RACERS) if await pools[1].tokens.find_refresh(f"next-{i}", now=NOW)]
    assert live == [statuses.index("rotated")]


async def test_replay_key_first_used_once_across_pools(pools: list[SqlStore]) -> None:
    results = await asyncio.gather(
        *(
            pools[i % POOLS].replay.first_use("jti-1", expires_at=NOW + 60, now=NOW)
            for i in range(RACERS)
        )
    )
    assert results.count(True) == 1


async def test_throttle_counts_every_hit_across_pools(pools: list[SqlStore]) -> None:
    counts = await asyncio.gather(
        *(pools[i % POOLS].throttle.hit("user:alice", now=NOW, window=60) for i in range(RACERS))
    )
    assert sorted(counts) == list(range(1, RACERS + 1))


async def test_reuse_and_revocation_racing_leave_the_family_dead(pools: list[SqlStore]) -> None:
    """A refresh racing the revocation of its family may win its UPDATE, but the token it
    writes is of a revoked grant and is never live."""
    await pools[0].tokens.add_refresh(make_refresh())
    rotation, _ = await asyncio.gather(
        pools[1].tokens.rotate_refresh("rt-1", make_refresh("rt-2"), now=NOW),
        pools[2].tokens.revoke_grant("g1", now=NOW),
    )
    assert rotation.status in {"rotated", "invalid"}
    assert await pools[3].tokens.find_refresh("rt-2", now=NOW) is None
    assert await pools[3].tokens.find_refresh("rt-1", now=NOW) is None


async def test_redemption_and_refresh_racing_consent_revocation_stay_dead(
    pools: list[SqlStore],
) -> None:
    """Whichever commits first, nothing of the user's grants at the client is live after a
    revocation: a code redeemed just before has its grant revoked, one not yet redeemed is gone."""
    await pools[0].codes.put(make_code())
    await pools[0].tokens.add_refresh(make_refresh("rt-1", grant_id="g0"))
    consumption, rotation, _ = await asyncio.gather(
        pools[1].codes.consume("code-1", now=NOW),
        pools[2].tokens.rotate_refresh("rt-1", make_refresh("rt-2", grant_id="g0"), now=NOW),
        pools[3].tokens.revoke_for_user_client("u1", "c1", now=NOW),
    )
    # a redemption that won its race goes on to write tokens of the code's grant: dead too
    await pools[1].tokens.add_refresh(make_refresh("rt-code"))
    assert await pools[4].tokens.find_refresh("rt-code", now=NOW) is None
    assert await pools[4].tokens.is_revoked("jti-new", "g1")
    assert consumption.replayed is False
    assert rotation.status in {"rotated", "invalid"}
    for token_hash in ("rt-1", "rt-2"):
        assert await pools[4].tokens.find_refresh(token_hash, now=NOW) is None
    assert (await pools[4].codes.consume("code-1", now=NOW)).code is None


RACE_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from ostiary.oauth.models import RefreshToken
    from ostiary.store import open_store

    async def main(url, me):
        async with open_store(url) as store:
            print("ready", flush=True)
            sys.stdin.readline()  # the barrier: every process races from the same moment
            def replacement(i):
                return RefreshToken(token_hash=f"next-{me}-{i}", grant_id="g1", client_id="c1",
                                    user_id="u1", scope=frozenset(), expires_at=2**40)
            codes = await asyncio.gather(
                *(store.codes.consume("code-1", now=1_800_000_000) for _ in range(10)))
            rotations = await asyncio.gather(
                *(store.tokens.rotate_refresh("rt-1", replacement(i), now=1_800_000_000)
                  for i in range(10)))
        print(json.dumps({"first": sum(1 for c in codes if c.code and not c.replayed),
                          "replayed": sum(1 for c in codes if c.replayed),
                          "statuses": [r.status for r in rotations]}), flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def test_one_winner_across_processes(database_url: str) -> None:
    """Four processes, ten concurrent redemptions each, of one code and one refresh token:
    one first redemption and one rotation in all, the rest replays and reuses."""

    async def seed() -> None:
        async with open_store(database_url) as store:
            await store.clients.add(make_client())
            await store.users.add(make_user())
            await store.codes.put(make_code())
            await store.tokens.add_refresh(make_refresh())

    asyncio.run(seed())
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", RACE_CHILD, database_url, str(me)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for me in range(4)
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
    assert [child.returncode for child in children] == [0] * 4, outcomes
    results = [json.loads(out) for out, _ in outcomes]
    assert sum(r["first"] for r in results) == 1
    assert sum(r["replayed"] for r in results) == 39
    statuses = [status for r in results for status in r["statuses"]]
    assert statuses.count("rotated") == 1
    assert statuses.count("reused") == 39


@pytest.mark.parametrize(
    "write",
    ["code", "refresh", "access", "consent"],
)
async def test_rows_must_belong_to_a_known_client(database_url: str, write: str) -> None:
    """Foreign keys are enforced on both databases (SQLite needs `PRAGMA foreign_keys`)."""
    async with open_store(database_url) as store:
        await store.users.add(make_user())
        with pytest.raises(ValueError, match="unknown client"):
            if write == "code":
                await store.codes.put(make_code(client_id="ghost"))
            elif write == "refresh":
                await store.tokens.add_refresh(make_refresh(client_id="ghost"))
            elif write == "access":
                await store.tokens.add_access(make_access(client_id="ghost"))
            else:
                await store.consents.put(
                    Consent(user_id="u1", client_id="ghost", scope=frozenset(), granted_at=NOW)
                )
        assert await store.codes.peek("code-1") is None
        assert await store.tokens.peek_refresh("rt-1") is None
        assert await store.tokens.find_access("jti-1") is None
        assert await store.consents.list_for_user("u1") == []


@pytest.mark.parametrize("value", ["nul\x00byte", "lone\ud800surrogate"], ids=["nul", "surrogate"])
async def test_text_no_database_can_hold_is_refused_in_writes(
    database_url: str, value: str
) -> None:
    writes = [
        lambda store: store.clients.add(make_client(value)),
        lambda store: store.clients.add(make_client("c2", redirect_uris=(value,))),
        lambda store: store.users.add(make_user("u2", value)),
        lambda store: store.codes.put(make_code(nonce=value)),
        lambda store: store.tokens.add_refresh(make_refresh(scope=frozenset({value}))),
        lambda store: store.tokens.add_access(make_access(subject=value)),
        lambda store: store.tokens.revoke_access(value, expires_at=NOW, now=NOW),
        lambda store: store.throttle.hit(value, now=NOW, window=60),
        lambda store: store.audit.record(AuditEvent(event="x", at=NOW, address=value)),
    ]
    async with open_store(database_url) as store:
        await store.clients.add(make_client())
        await store.users.add(make_user())
        for write in writes:
            with pytest.raises(ValueError, match="cannot be stored"):
                await write(store)
        assert not await store.replay.first_use(value, expires_at=NOW + 60, now=NOW)
        assert [c.client_id for c in await store.clients.list()] == ["c1"]
        assert await store.audit.tail() == []


async def test_failed_rotation_writes_nothing(database_url: str) -> None:
    """The replacement clashes with an existing token: the old one must stay live."""
    async with open_store(database_url) as store:
        await store.clients.add(make_client())
        await store.users.add(make_user())
        await store.tokens.add_refresh(make_refresh("rt-1"))
        await store.tokens.add_refresh(make_refresh("rt-2"))
        with pytest.raises(ValueError, match="exists"):
            await store.tokens.rotate_refresh("rt-1", make_refresh("rt-2"), now=NOW)
        assert await store.tokens.find_refresh("rt-1", now=NOW) == make_refresh("rt-1")


async def test_writers_of_one_turn_commit_together_and_a_failed_one_alone(
    database_url: str,
) -> None:
    """Token-path writes that meet in one turn of the event loop share a transaction (SQLite
    group commit): each caller returns only once its write is committed, and one that fails
    takes nothing of the others' with it."""
    async with open_store(database_url) as store, open_store(database_url) as other:
        await store.clients.add(make_client())
        await store.users.add(make_user())
        await store.tokens.add_access(make_access("jti-0"))
        await store.tokens.add_refresh(make_refresh("rt-1"))
        results = await asyncio.gather(
            *(store.tokens.add_access(make_access(f"jti-{i}")) for i in range(1, 21)),
            store.tokens.add_access(make_access("jti-0")),  # exists: fails alone
            store.tokens.rotate_refresh("rt-1", make_refresh("rt-2"), now=NOW),
            *(store.audit.record(AuditEvent(event="x", at=NOW + i)) for i in range(5)),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        assert len(failures) == 1
        assert isinstance(failures[0], ValueError)
        # committed, as another connection (another process) sees them
        for i in range(21):
            assert await other.tokens.find_access(f"jti-{i}") is not None
        assert await other.tokens.find_refresh("rt-1", now=NOW) is None
        assert await other.tokens.find_refresh("rt-2", now=NOW) == make_refresh("rt-2")
        assert len(await other.audit.tail()) == 5


def _statements_sent(db: Any, method: str) -> list[int]:
    """On PostgreSQL, how many calls each shared statement sent by `method` carried, from
    now on (the real method still runs); on SQLite, which sends none, stays empty."""
    sizes: list[int] = []
    if isinstance(db, PostgresDatabase):
        send = getattr(db, method)

        async def counted(statement: Any, calls: list[Any]) -> Any:
            sizes.append(len(calls))
            return await send(statement, calls)

        setattr(db, method, counted)
    return sizes


async def test_rows_of_one_turn_are_inserted_together_and_a_bad_one_fails_alone(
    database_url: str,
) -> None:
    """`fast_insert`: rows written in one turn of the event loop share a statement (on
    PostgreSQL one INSERT ... SELECT FROM unnest(...)); a row that cannot be stored fails
    alone, every other row is stored, and each caller returns once its row is committed."""
    rows = BatchInsert(revoked_grants)
    async with open_store(database_url) as store, open_store(database_url) as other:
        db = store._db
        statements = _statements_sent(db, "_insert_many")
        await db.fast_insert(rows, {"grant_id": "g-0", "revoked_at": NOW})
        results = await asyncio.gather(
            *(db.fast_insert(rows, {"grant_id": f"g-{i}", "revoked_at": NOW}) for i in range(30)),
            return_exceptions=True,
        )
        assert [type(r) for r in results if isinstance(r, BaseException)] == [IntegrityError]
        assert isinstance(results[0], IntegrityError)  # g-0 was there before
        if isinstance(db, PostgresDatabase):
            assert statements == [30]  # one statement tried for the whole turn
        for i in range(30):  # committed, as another process sees them
            assert await other.tokens.is_revoked("any-jti", f"g-{i}")
        assert not await other.tokens.is_revoked("any-jti", "g-30")


async def test_lookups_of_one_turn_share_a_statement(database_url: str) -> None:
    """`fast_lookup`: the refresh tokens peeked at in one turn of the event loop are read by
    one statement on PostgreSQL (`... = ANY($1)`); each caller gets its own row, or None,
    and a token asked for twice in the turn is found for both callers."""
    async with open_store(database_url) as store:
        await store.clients.add(make_client())
        await store.users.add(make_user())
        for i in range(20):
            await store.tokens.add_refresh(make_refresh(f"rt-{i}"))
        db = store._db
        statements = _statements_sent(db, "_lookup_many")
        results = await asyncio.gather(
            *(store.tokens.peek_refresh(f"rt-{i}") for i in range(25)),
            store.tokens.peek_refresh("rt-3"),
        )
        assert results[:20] == [make_refresh(f"rt-{i}") for i in range(20)]
        assert results[20:25] == [None] * 5
        assert results[25] == make_refresh("rt-3")
        if isinstance(db, PostgresDatabase):
            assert statements == [25]  # 25 different tokens, one statement
        assert await store.tokens.peek_refresh("rt-7") == make_refresh("rt-7")  # alone


async def test_rotations_of_one_turn_share_a_statement_and_a_bad_one_fails_alone(
    database_url: str,
) -> None:
    """The refreshes rotated in one turn of the event loop are one statement on PostgreSQL:
    each is claimed and written as if alone (its new token, its access token's record, its
    audit event); one whose record cannot be stored fails alone and writes nothing, the
    others rotate; a token presented twice in the turn rotates once."""
    async with open_store(database_url) as store, open_store(database_url) as other:
        await store.clients.add(make_client())
        await store.users.add(make_user())
        await store.tokens.add_access(make_access("jti-taken"))
        for i in range(20):
            await store.tokens.add_refresh(make_refresh(f"rt-{i}", grant_id=f"g-{i}"))
        db = store._db
        statements = _statements_sent(db, "_run_many")

        def rotate(i: int, token_id: str) -> Any:
            return store.tokens.rotate_refresh(
                f"rt-{i}",
                make_refresh(f"new-{i}-{token_id}", grant_id=f"g-{i}"),
                now=NOW + 10,
                issuance=Issuance(
                    access=make_access(token_id, grant_id=f"g-{i}"),
                    event=AuditEvent(event="token.issued", at=NOW + 10, grant_id=f"g-{i}"),
                ),
            )

        results = await asyncio.gather(
            *(rotate(i, f"jti-{i}") for i in range(19)),
            rotate(19, "jti-taken"),  # its access token's record exists: fails alone
            rotate(3, "jti-again"),  # rt-3 a second time in the same turn
            return_exceptions=True,
        )
        if isinstance(db, PostgresDatabase):
            assert statements == [21]  # tried as one; the failure then ran each alone
        assert [getattr(r, "status", None) for r in results[:19]] == ["rotated"] * 19
        assert isinstance(results[19], ValueError)
        assert getattr(results[20], "status", None) == "reused"
        for i in range(19):  # committed, as another process sees them
            assert await other.tokens.find_refresh(f"new-{i}-jti-{i}", now=NOW + 10) is not None
            assert await other.tokens.find_access(f"jti-{i}") is not None
        assert await other.tokens.find_refresh("rt-19", now=NOW + 10) is not None  # untouched
        assert await other.tokens.peek_refresh("new-19-jti-taken") is None
        assert await other.tokens.peek_refresh("new-3-jti-again") is None
        assert await other.tokens.find_access("jti-again") is None
        issued = [e.grant_id for e in await other.audit.tail(100)]
        assert sorted(issued) == sorted(f"g-{i}" for i in range(19))


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty PostgreSQL database, for what only PostgreSQL does."""
    url: str = request.getfixturevalue("postgres_session_url")
    asyncio.run(truncate(url))
    return url


async def test_a_failed_lookup_fails_every_caller_of_its_turn(postgres_url: str) -> None:
    """The shared statement fails (here: the table is out of reach for a moment): every peek
    of the turn gets the error, none waits forever, and a later turn works again."""
    database_url = postgres_url
    async with open_store(database_url) as store:
        await store.clients.add(make_client())
        await store.users.add(make_user())
        await store.tokens.add_refresh(make_refresh("rt-1"))
        assert await store.tokens.peek_refresh("rt-1") == make_refresh("rt-1")
        await _admin(database_url, "ALTER TABLE refresh_tokens RENAME TO refresh_tokens_away")
        try:
            results = await asyncio.wait_for(
                asyncio.gather(
                    *(store.tokens.peek_refresh(f"rt-{i}") for i in range(5)),
                    return_exceptions=True,
                ),
                timeout=30,
            )
        finally:
            await _admin(database_url, "ALTER TABLE refresh_tokens_away RENAME TO refresh_tokens")
        assert all(isinstance(r, Exception) for r in results), results
        assert len({type(r) for r in results}) == 1
        found = None
        for _ in range(3):  # a statement the driver had prepared may fail once more
            with contextlib.suppress(Exception):
                found = await store.tokens.peek_refresh("rt-1")
                break
        assert found == make_refresh("rt-1")


async def _admin(database_url: str, statement: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def test_rows_of_one_turn_are_sent_once(database_url: str) -> None:
    """Audit events of one turn go to the database together: on PostgreSQL one statement, on
    SQLite one `executemany` in one savepoint of the group commit, committed once."""
    async with open_store(database_url) as store, open_store(database_url) as other:
        db = store._db
        statements = _statements_sent(db, "_insert_many")
        traced: list[str] = []
        if not isinstance(db, PostgresDatabase):
            db._raw().set_trace_callback(traced.append)  # type: ignore[union-attr]
        events = [AuditEvent(event="token.issued", at=NOW + i) for i in range(30)]
        await asyncio.gather(*(store.audit.record(event) for event in events))
        if isinstance(db, PostgresDatabase):
            assert statements == [30]
        else:
            assert sum(sql.startswith("SAVEPOINT") for sql in traced) == 1
            assert traced.count("COMMIT") == 1
        assert await other.audit.tail(100) == events


async def test_a_row_no_column_can_hold_fails_alone_in_its_turn(database_url: str) -> None:
    """A value JSON cannot hold (NaN) in one row of a turn: that caller gets `TypeError`,
    the other rows of the turn are stored."""
    async with open_store(database_url) as store, open_store(database_url) as other:
        row = {"at": NOW, "client_id": None, "user_id": None, "grant_id": None, "address": None}
        good = [{**row, "event": f"good-{i}", "detail": {"i": i}} for i in range(5)]
        bad = {**row, "event": "bad", "detail": {"x": float("nan")}}
        results = await asyncio.gather(
            *(store._db.fast_insert(RECORD_ROWS, values) for values in [*good, bad]),
            return_exceptions=True,
        )
        assert results[:5] == [None] * 5
        assert isinstance(results[5], TypeError)
        assert [e.event for e in await other.audit.tail(100)] == [f"good-{i}" for i in range(5)]


async def test_audit_events_of_one_turn_are_all_stored_in_order(database_url: str) -> None:
    events = [AuditEvent(event="token.issued", at=NOW + i, detail={"i": i}) for i in range(40)]
    async with open_store(database_url) as store, open_store(database_url) as other:
        await asyncio.gather(*(store.audit.record(event) for event in events))
        assert await other.audit.tail(100) == events


async def test_audit_event_is_also_one_json_log_line(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    event = AuditEvent(
        event="refresh.reuse_detected",
        at=NOW,
        client_id="c1",
        grant_id="g1",
        address="192.0.2.1",
        detail={"revoked": 3},
    )
    async with open_store(database_url) as store:
        with caplog.at_level(logging.INFO, logger="ostiary.audit"):
            await store.audit.record(event)
    lines = [r for r in caplog.records if r.name == "ostiary.audit"]
    assert len(lines) == 1
    assert json.loads(lines[0].getMessage()) == {
        "event": "refresh.reuse_detected",
        "at": NOW,
        "client_id": "c1",
        "grant_id": "g1",
        "address": "192.0.2.1",
        "detail": {"revoked": 3},
    }


async def test_audit_detail_must_be_json(database_url: str) -> None:
    async with open_store(database_url) as store:
        with pytest.raises(TypeError, match="JSON"):
            await store.audit.record(AuditEvent(event="x", at=NOW, detail={"t": object()}))
        with pytest.raises(TypeError, match="JSON"):
            await store.audit.record(AuditEvent(event="x", at=NOW, detail={"n": float("nan")}))
        assert await store.audit.tail() == []


async def test_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "ostiary.db"
    url = f"sqlite:///{path}"
    await ostiary.store.migrate(url)
    async with open_store(url) as store:
        await store.clients.add(make_client())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[tuple[SqlStore, Path]]:
    path = tmp_path / "ostiary.db"
    await ostiary.store.migrate(f"sqlite:///{path}")
    async with open_store(f"sqlite:///{path}") as store:
        await store.clients.add(make_client())  # a write: the store has written before
        yield store, path


async def test_sqlite_reads_never_wait_for_another_writer(
    sqlite_store: tuple[SqlStore, Path],
) -> None:
    """Reads run inline in WAL mode, after writes too: neither another process's write
    transaction nor the store's own writer thread being busy holds them up."""
    store, path = sqlite_store
    other = sqlite3.connect(path, isolation_level=None)  # another process, say
    writer_thread_busy = store._db._writers  # type: ignore[attr-defined]
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("DELETE FROM clients")
        async with writer_thread_busy:
            found = await asyncio.wait_for(store.clients.get("c1"), timeout=5)
        assert found == make_client()  # WAL: the last committed state
        other.execute("COMMIT")
        assert await store.clients.get("c1") is None
    finally:
        other.close()


async def test_sqlite_write_waits_for_another_processs_write(
    sqlite_store: tuple[SqlStore, Path],
) -> None:
    store, path = sqlite_store
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO users VALUES ('u9', 'zoe', 'h', 0, NULL)")
        # The store finds the lock taken and waits in a thread; the event loop stays free
        # to run the other writer's COMMIT, after which the store's write goes through.
        asyncio.get_running_loop().call_soon(other.execute, "COMMIT")
        await store.users.add(make_user())
        assert [u.user_id for u in await store.users.list()] == ["u1", "u9"]
        # and the next write is inline again
        await store.users.add(make_user("u2", "bob"))
    finally:
        other.close()


async def test_sqlite_rows_of_a_turn_wait_for_another_processs_write(
    sqlite_store: tuple[SqlStore, Path],
) -> None:
    """Audit rows that find SQLite's write lock taken wait for it (in the writer thread) and
    are all stored once it is free; the event loop stays free meanwhile."""
    store, path = sqlite_store
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        events = [AuditEvent(event="token.issued", at=NOW + i) for i in range(10)]
        recording = asyncio.gather(*(store.audit.record(event) for event in events))
        await asyncio.sleep(0.2)
        assert not recording.done()  # waiting for the lock, not lost, not failed
        other.execute("COMMIT")
        await asyncio.wait_for(recording, timeout=10)
        assert await store.audit.tail(100) == events
    finally:
        other.close()


async def test_memory_database_lives_as_long_as_its_store() -> None:
    async with open_store("sqlite:///:memory:") as first:
        await first.clients.add(make_client())
        await first.users.add(make_user())
        await first.codes.put(make_code())
        results = await asyncio.gather(
            *(first.codes.consume("code-1", now=NOW) for _ in range(RACERS))
        )
        assert sum(1 for r in results if not r.replayed) == 1
        async with open_store("sqlite:///:memory:") as second:
            assert await second.clients.list() == []
        assert await first.clients.get("c1") == make_client()


async def test_open_store_awaited_or_entered(database_url: str) -> None:
    store = await open_store(database_url)
    try:
        assert isinstance(store, SqlStore)
        assert store.backend == database_url.partition(":")[0]
    finally:
        await store.close()
    async with await open_store(database_url) as entered:
        assert await entered.users.list() == []


def test_open_store_runs_under_asyncio_run() -> None:
    store = asyncio.run(open_store("sqlite:///:memory:"))
    assert store.backend == "sqlite"
    asyncio.run(store.close())


def test_pool_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="pool_size"):
        open_store("sqlite:///:memory:", pool_size=0)


def test_public_names_are_pinned() -> None:
    assert sorted(ostiary.store.__all__) == [
        "AuditFilter",
        "DEFAULT_DATABASE_URL",
        "SqlStore",
        "engine_url",
        "migrate",
        "open_store",
        "write_audit_lines_with",
    ]
    assert all(hasattr(ostiary.store, name) for name in ostiary.store.__all__)
