"""`TokenStore.purge_expired` on MemoryStore, SQLite and PostgreSQL: what expired goes, what
lives or what the protocol still needs stays, in bounded steps, and two purgers at once on
one database neither fail nor double count."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from store_databases import truncate
from test_contract import (
    NOW,
    make_access,
    make_client,
    make_code,
    make_refresh,
    make_session,
    make_user,
)

from ostiary.oauth.models import PURGED_TABLES, Purged
from ostiary.oauth.rate_limits import Penalty
from ostiary.oauth.store import Store
from ostiary.store import open_store
from ostiary.store._purge import _LOCK_CLASS

pytestmark = pytest.mark.anyio

BEFORE = NOW  # what expired at or before this goes


async def purge_all(
    store: Store, *, before: int = BEFORE, limit: int = 1000, **kwargs: Any
) -> dict[str, int]:
    """Step until nothing is left (or another process is purging); the rows removed."""
    counts = dict.fromkeys(PURGED_TABLES, 0)
    for _ in range(10_000):
        step = await store.tokens.purge_expired(before=before, limit=limit, **kwargs)
        assert set(step.counts) == set(PURGED_TABLES)
        for table, count in step.counts.items():
            counts[table] += count
        if step.busy or not step.more:
            return counts
    raise AssertionError("the purge never ended")


def only(**counts: int) -> dict[str, int]:
    return dict.fromkeys(PURGED_TABLES, 0) | counts


@pytest.fixture
async def owners(store: Store) -> Store:
    await store.clients.add(make_client())
    await store.users.add(make_user())
    return store


async def rotate(store: Store, old: str, new: str, *, expires_at: int, now: int) -> None:
    current = await store.tokens.peek_refresh(old)
    assert current is not None
    replacement = make_refresh(new, grant_id=current.grant_id, expires_at=expires_at)
    rotation = await store.tokens.rotate_refresh(old, replacement, now=now)
    assert rotation.status == "rotated"


async def test_expired_rows_of_every_kind_go_and_live_ones_stay(owners: Store) -> None:
    store = owners
    # access tokens and revocations: by their own expiry
    await store.tokens.add_access(make_access("at-old", grant_id="ga", expires_at=BEFORE))
    await store.tokens.add_access(make_access("at-new", grant_id="ga", expires_at=BEFORE + 1))
    await store.tokens.revoke_access("rv-old", expires_at=BEFORE, now=BEFORE - 10)
    await store.tokens.revoke_access("rv-new", expires_at=BEFORE + 1, now=BEFORE - 10)
    assert await store.replay.first_use("jti-old", expires_at=BEFORE, now=BEFORE - 10)
    assert await store.replay.first_use("jti-new", expires_at=BEFORE + 1, now=BEFORE - 10)
    # a refresh family whose newest token expired goes whole
    await store.tokens.add_refresh(make_refresh("dead-1", grant_id="gd", expires_at=BEFORE - 9))
    await rotate(store, "dead-1", "dead-2", expires_at=BEFORE, now=BEFORE - 20)
    # a family with a live token keeps its rotated, expired ones
    await store.tokens.add_refresh(make_refresh("live-1", grant_id="gl", expires_at=BEFORE - 5))
    await rotate(store, "live-1", "live-2", expires_at=BEFORE + 1, now=BEFORE - 20)
    # codes: unredeemed and expired go; a redeemed one stays while its grant has a token
    await store.codes.put(make_code("code-unused", grant_id="gu", expires_at=BEFORE))
    await store.codes.put(make_code("code-fresh", grant_id="gf", expires_at=BEFORE + 1))
    await store.codes.put(make_code("code-of-live", grant_id="gl", expires_at=BEFORE))
    await store.codes.put(make_code("code-of-dead", grant_id="gd", expires_at=BEFORE))
    await store.codes.put(make_code("code-of-access", grant_id="ga", expires_at=BEFORE))
    for code in ("code-of-live", "code-of-dead", "code-of-access"):
        assert (await store.codes.consume(code, now=BEFORE - 30)).code is not None
    # revoked grants: stay while a token of theirs has not expired
    assert await store.tokens.revoke_grant("gd", now=BEFORE - 1) == 2  # dead-1 and dead-2
    await store.tokens.add_access(make_access("at-gr", grant_id="gr", expires_at=BEFORE + 1))
    assert await store.tokens.revoke_grant("gr", now=BEFORE - 1) == 1
    # a grant revoked by deleting its client is revoked for good
    await store.clients.add(make_client("c2"))
    await store.tokens.add_refresh(make_refresh("rt-c2", grant_id="gc2", client_id="c2"))
    assert await store.clients.delete("c2")
    # sessions: an expired one goes once ended
    for name in ("s-ended", "s-open", "s-live"):
        await store.sessions.add(make_session(name))
    assert await store.sessions.end("s-ended", now=NOW - 1)
    assert await store.sessions.end("s-live", now=NOW - 1)
    # throttle hits, rate counters, penalties
    assert await store.throttle.hit("addr-old", now=BEFORE - 1, window=3600) == 1
    assert await store.throttle.hit("addr-new", now=BEFORE + 1, window=3600) == 1
    await store.rates.add(7, {"k-old": 1}, expires_at=BEFORE, now=BEFORE - 100)
    await store.rates.add(8, {"k-new": 1}, expires_at=BEFORE + 1, now=BEFORE - 100)
    for key, forget_at in (("p-old", BEFORE), ("p-new", BEFORE + 1)):
        await store.penalties.update(
            key,
            lambda _, f=forget_at: Penalty(strikes=1, struck_at=f - 9, until=f - 5, forget_at=f),
            now=BEFORE - 10,
        )

    sessions_before = BEFORE + 100  # make_session expires at NOW + 100
    counts = await purge_all(store, throttle_before=BEFORE)
    assert counts == only(
        access_tokens=1,  # at-old
        revoked_access_tokens=1,  # rv-old
        replay_entries=1,
        refresh_tokens=2,  # dead-1, dead-2
        authorization_codes=2,  # code-unused, code-of-dead
        revoked_grants=1,  # gd
        throttle_hits=1,
        rate_counters=1,
        rate_penalties=1,
    )
    assert await purge_all(store, throttle_before=BEFORE) == only()  # idempotent

    assert await store.tokens.find_access("at-old") is None
    assert await store.tokens.find_access("at-new") is not None
    assert not await store.tokens.is_revoked("rv-old", None)
    assert await store.tokens.is_revoked("rv-new", None)
    assert not await store.replay.first_use("jti-new", expires_at=BEFORE + 1, now=BEFORE)
    assert await store.replay.first_use("jti-old", expires_at=BEFORE + 1, now=BEFORE)
    assert await store.tokens.peek_refresh("dead-1") is None
    assert await store.tokens.peek_refresh("dead-2") is None
    assert await store.tokens.peek_refresh("live-1") is not None
    assert await store.tokens.peek_refresh("live-2") is not None
    assert await store.codes.peek("code-unused") is None
    assert await store.codes.peek("code-fresh") is not None
    assert await store.codes.peek("code-of-live") is not None
    assert await store.codes.peek("code-of-access") is not None
    assert await store.codes.peek("code-of-dead") is None
    assert await store.tokens.is_revoked("at-gr", "gr")
    assert await store.tokens.is_revoked("anything", "gc2")
    assert await store.throttle.count("addr-old", now=BEFORE, window=3600) == 0
    assert await store.throttle.count("addr-new", now=BEFORE + 1, window=3600) == 1
    assert set(await store.penalties.active("p-", now=BEFORE - 100)) == {"p-new"}

    # sessions expire later: only the ended one of those goes then
    counts = await store.tokens.purge_expired(before=sessions_before)
    assert counts.counts["login_sessions"] == 2  # s-ended and s-live, both ended
    assert await store.sessions.end("s-open", now=sessions_before + 1) is False  # expired
    assert await store.sessions.end_expired(now=sessions_before + 1) == 1
    counts = await store.tokens.purge_expired(before=sessions_before)
    assert counts.counts["login_sessions"] == 1


async def test_throttle_hits_stay_without_a_throttle_horizon(owners: Store) -> None:
    await owners.throttle.hit("addr", now=BEFORE - 1000, window=3600)
    assert (await purge_all(owners))["throttle_hits"] == 0
    assert await owners.throttle.count("addr", now=BEFORE - 1000, window=3600) == 1


async def test_a_reused_rotated_token_still_revokes_its_live_family_after_a_purge(
    owners: Store,
) -> None:
    store = owners
    # rt-1 expired long ago, but its family lives on through rt-3
    await store.tokens.add_refresh(make_refresh("rt-1", grant_id="g", expires_at=BEFORE - 500))
    await rotate(store, "rt-1", "rt-2", expires_at=BEFORE - 100, now=BEFORE - 900)
    await rotate(store, "rt-2", "rt-3", expires_at=BEFORE + 3600, now=BEFORE - 200)
    assert (await purge_all(store))["refresh_tokens"] == 0

    rotation = await store.tokens.rotate_refresh("rt-1", make_refresh("x", grant_id="g"), now=NOW)
    assert rotation.status == "reused"  # the refresh grant then revokes the family
    assert await store.tokens.revoke_grant("g", now=NOW) == 3
    assert await store.tokens.find_refresh("rt-3", now=NOW) is None


async def test_a_replayed_code_still_revokes_what_it_issued_after_a_purge(owners: Store) -> None:
    store = owners
    await store.codes.put(make_code("code", grant_id="g", expires_at=BEFORE - 1000))
    assert (await store.codes.consume("code", now=BEFORE - 1030)).code is not None
    await store.tokens.add_refresh(make_refresh("rt", grant_id="g", expires_at=BEFORE + 10))
    await store.tokens.add_access(make_access("at", grant_id="g", expires_at=BEFORE - 400))
    assert (await purge_all(store))["authorization_codes"] == 0

    replay = await store.codes.consume("code", now=NOW)
    assert replay.replayed and replay.code is not None
    assert await store.tokens.revoke_grant("g", now=NOW) == 1
    assert await store.tokens.find_refresh("rt", now=NOW) is None

    # once every token of the grant has expired, nothing is left to revoke: the code goes
    later = BEFORE + 10
    gone = await store.tokens.purge_expired(before=later)
    assert gone.counts["authorization_codes"] == 1
    assert await store.codes.peek("code") is None


async def test_more_rows_than_a_batch_all_go(owners: Store) -> None:
    store = owners
    for i in range(23):
        await store.tokens.add_access(make_access(f"at-{i}", expires_at=BEFORE - i % 3))
        await store.tokens.add_refresh(
            make_refresh(f"rt-{i}", grant_id=f"g-{i}", expires_at=BEFORE - i % 2)
        )
    # a long-lived family with more expired rotated tokens than a batch: walked past, kept
    await store.tokens.add_refresh(make_refresh("f-0", grant_id="f", expires_at=BEFORE - 30))
    for i in range(1, 12):
        await rotate(store, f"f-{i - 1}", f"f-{i}", expires_at=BEFORE - 30 + i, now=BEFORE - 40)
    await rotate(store, "f-11", "f-live", expires_at=BEFORE + 1, now=BEFORE - 40)
    await store.tokens.add_access(make_access("at-live", grant_id="x", expires_at=BEFORE + 1))

    first = await store.tokens.purge_expired(before=BEFORE, limit=5)
    assert 0 < first.total <= 5 * len(PURGED_TABLES)
    counts = await purge_all(store, limit=5)
    assert counts["access_tokens"] + first.counts["access_tokens"] == 23
    assert counts["refresh_tokens"] + first.counts["refresh_tokens"] == 23
    assert await purge_all(store, limit=5) == only()
    assert await store.tokens.find_access("at-live") is not None
    for i in range(12):
        assert await store.tokens.peek_refresh(f"f-{i}") is not None
    # once its newest token expired, the family goes whole
    assert (await purge_all(store, before=BEFORE + 1, limit=5))["refresh_tokens"] == 13


async def test_a_limit_below_one_is_a_mistake(store: Store) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.tokens.purge_expired(before=BEFORE, limit=0)


async def fill(url: str, rows: int) -> None:
    async with open_store(url) as store:
        await store.clients.add(make_client())
        await store.users.add(make_user())
        for i in range(rows):
            await store.tokens.add_access(make_access(f"at-{i}", expires_at=BEFORE - i % 7))
            await store.tokens.revoke_access(f"rv-{i}", expires_at=BEFORE, now=BEFORE - 9)


async def test_two_purgers_on_one_database_finish_and_count_each_row_once(
    database_url: str,
) -> None:
    await fill(database_url, 600)
    async with open_store(database_url) as one, open_store(database_url) as two:
        counts = await asyncio.gather(purge_all(one, limit=50), purge_all(two, limit=50))
        assert sum(c["access_tokens"] for c in counts) == 600
        assert sum(c["revoked_access_tokens"] for c in counts) == 600
        # whoever stopped early (the other was purging) leaves nothing a later round misses
        assert await purge_all(one) == only()
        assert await one.tokens.find_access("at-0") is None


async def test_a_purger_gives_way_while_another_holds_the_lock(
    postgres_session_url: str,
) -> None:
    url = postgres_session_url
    await truncate(url)
    await fill(url, 3)
    holder = await asyncpg.connect(url)
    try:
        async with open_store(url) as store:
            async with holder.transaction():
                await holder.execute("SELECT pg_advisory_xact_lock($1, 0)", _LOCK_CLASS)
                step = await store.tokens.purge_expired(before=BEFORE)
                assert step == Purged(counts=only(), more=True, busy=True)
                assert await store.tokens.find_access("at-0") is not None
            assert (await purge_all(store))["access_tokens"] == 3
    finally:
        await holder.close()
