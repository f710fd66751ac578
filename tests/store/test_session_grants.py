"""Ending a login session ends the grants made in it (Back-Channel Logout 1.0 §2.7), on
MemoryStore, SQLite and PostgreSQL: every route that ends a session revokes the codes and
refresh-token families carrying its `sid` unless they hold `offline_access`, in the
transaction that ends it, and says so in one audit event per session; a refresh racing the
end never leaves a live token of the ended session."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from test_contract import (
    NOW,
    make_access,
    make_client,
    make_code,
    make_refresh,
    make_session,
    make_user,
)

from ostiary.oauth.backchannel_logout import SESSION_END_EVENT
from ostiary.oauth.models import AuditEvent, LoginSession, RefreshToken
from ostiary.oauth.store import Store

pytestmark = pytest.mark.anyio

ONLINE = frozenset({"openid", "read"})
OFFLINE = frozenset({"openid", "read", "offline_access"})


@pytest.fixture
async def owners(store: Store) -> Store:
    await store.clients.add(make_client())
    await store.users.add(make_user())
    return store


def session(name: str = "s1", *, sid: str | None = None, **fields: Any) -> LoginSession:
    return dataclasses.replace(make_session(name), sid=sid or f"sid-{name}", **fields)


def refresh(token_hash: str, grant_id: str, sid: str | None, scope: frozenset[str]) -> RefreshToken:
    return make_refresh(token_hash, grant_id=grant_id, sid=sid, scope=scope)


async def session_events(store: Store) -> list[AuditEvent]:
    return [e for e in await store.audit.tail(100) if e.event == SESSION_END_EVENT]


async def is_live(store: Store, token_hash: str) -> bool:
    return await store.tokens.find_refresh(token_hash, now=NOW + 1) is not None


# Each route that ends a session, as the server and the command line call it.
Ending = Callable[[Store], Awaitable[int]]
ROUTES: dict[str, tuple[Ending, str]] = {
    "logout": (lambda s: s.sessions.end("s1", now=NOW + 1), "logout"),
    "replaced": (lambda s: s.sessions.end("s1", now=NOW + 1, reason="replaced"), "replaced"),
    "sign-out": (lambda s: s.sessions.end_for_user("u1", now=NOW + 1), "sign-out"),
    "user deleted": (
        lambda s: s.sessions.end_for_user("u1", now=NOW + 1, reason="user deleted"),
        "user deleted",
    ),
    "expired": (lambda s: s.sessions.end_expired(now=NOW + 100), "expired"),
}


@pytest.mark.parametrize("route", list(ROUTES))
async def test_every_route_that_ends_a_session_revokes_its_online_grants(
    owners: Store, route: str
) -> None:
    store = owners
    end, reason = ROUTES[route]
    await store.sessions.add(session("s1"))
    # g1: redeemed, rotated once, an access token recorded: revoked whole
    await store.codes.put(make_code("code-1", grant_id="g1", sid="sid-s1", scope=ONLINE))
    await store.codes.consume("code-1", now=NOW)
    await store.tokens.add_refresh(refresh("rt-1", "g1", "sid-s1", ONLINE))
    await store.tokens.rotate_refresh("rt-1", refresh("rt-2", "g1", "sid-s1", ONLINE), now=NOW)
    await store.tokens.add_access(make_access("jti-1", grant_id="g1"))
    # g2: offline_access: kept, its access token too
    await store.tokens.add_refresh(refresh("rt-3", "g2", "sid-s1", OFFLINE))
    await store.tokens.add_access(make_access("jti-2", grant_id="g2"))
    await store.codes.put(make_code("code-2", grant_id="g2b", sid="sid-s1", scope=OFFLINE))
    # g3: a code still in flight: never redeemed, and what a redemption writes later is dead
    await store.codes.put(make_code("code-3", grant_id="g3", sid="sid-s1", scope=ONLINE))

    assert await end(store) == 1

    assert not await is_live(store, "rt-2")
    rotation = await store.tokens.rotate_refresh(
        "rt-2", refresh("x", "g1", "sid-s1", ONLINE), now=NOW + 1
    )
    assert rotation.status == "invalid"
    assert await store.tokens.is_revoked("jti-1", "g1")
    assert await store.tokens.is_revoked("jti-later", "g1")  # any access token of the grant
    assert await is_live(store, "rt-3")
    assert not await store.tokens.is_revoked("jti-2", "g2")
    assert (await store.codes.consume("code-3", now=NOW + 1)).code is None  # never redeemed
    assert await store.codes.peek("code-1") is not None  # a replay is still told apart
    assert (await store.codes.consume("code-2", now=NOW + 1)).code is not None  # offline
    # what a redemption that consumed code-3 just before the end writes after it
    await store.tokens.add_refresh(refresh("rt-4", "g3", "sid-s1", ONLINE))
    assert not await is_live(store, "rt-4")
    assert await store.tokens.is_revoked("jti-3", "g3")

    (event,) = await session_events(store)
    ended_at = NOW + 100 if route == "expired" else NOW + 1
    assert (event.user_id, event.client_id, event.grant_id, event.at) == (
        "u1",
        None,
        None,
        ended_at,
    )
    # g1 and g3; rt-1 (rotated), rt-2 and jti-1; g2 and g2b kept
    assert event.detail == {
        "reason": reason,
        "revoked_grants": 2,
        "revoked_tokens": 3,
        "kept_offline_grants": 2,
    }


async def test_other_sessions_and_grants_without_a_session_are_untouched(owners: Store) -> None:
    store = owners
    await store.users.add(make_user("u2", "bob"))
    await store.sessions.add(session("s1"))
    await store.sessions.add(session("s2"))  # the same person, another browser
    await store.sessions.add(dataclasses.replace(session("s3"), user_id="u2"))
    await store.tokens.add_refresh(refresh("rt-1", "g1", "sid-s1", ONLINE))
    await store.tokens.add_refresh(refresh("rt-2", "g2", "sid-s2", ONLINE))
    await store.tokens.add_refresh(
        dataclasses.replace(refresh("rt-3", "g3", "sid-s3", ONLINE), user_id="u2")
    )
    await store.tokens.add_refresh(refresh("rt-4", "g4", None, ONLINE))  # no session: a CLI grant
    await store.codes.put(make_code("code-5", grant_id="g5", sid="sid-s2", scope=ONLINE))
    await store.tokens.add_access(make_access("jti-2", grant_id="g2"))

    assert await store.sessions.end("s1", now=NOW + 1) is True

    assert not await is_live(store, "rt-1")
    for token_hash in ("rt-2", "rt-3", "rt-4"):
        assert await is_live(store, token_hash)
    assert not await store.tokens.is_revoked("jti-2", "g2")
    assert not await store.tokens.is_revoked("jti-5", "g5")
    assert await store.sessions.get("s2", now=NOW + 1) is not None
    (event,) = await session_events(store)
    assert event.detail["revoked_grants"] == 1


async def test_ending_an_ended_session_again_changes_nothing(owners: Store) -> None:
    store = owners
    await store.sessions.add(session("s1"))
    await store.tokens.add_refresh(refresh("rt-1", "g1", "sid-s1", ONLINE))
    assert await store.sessions.end("s1", now=NOW + 1) is True
    assert await store.sessions.end("s1", now=NOW + 2) is False
    assert await store.sessions.end_for_user("u1", now=NOW + 2) == 0
    assert await store.sessions.end_expired(now=NOW + 200) == 0
    assert len(await session_events(store)) == 1


async def test_a_grant_revoked_before_is_not_counted_again(owners: Store) -> None:
    store = owners
    await store.sessions.add(session("s1"))
    await store.tokens.add_refresh(refresh("rt-1", "g1", "sid-s1", ONLINE))
    await store.tokens.add_refresh(refresh("rt-2", "g2", "sid-s1", ONLINE))
    assert await store.tokens.revoke_grant("g1", now=NOW) == 1  # reuse detected, say
    assert await store.sessions.end("s1", now=NOW + 1) is True
    (event,) = await session_events(store)
    assert event.detail == {
        "reason": "logout",
        "revoked_grants": 1,
        "revoked_tokens": 1,
        "kept_offline_grants": 0,
    }


async def test_a_session_with_nothing_issued_is_audited_with_zero_counts(owners: Store) -> None:
    await owners.sessions.add(make_session("s0"))  # from before sids: no grant can name it
    await owners.sessions.add(session("s1"))
    assert await owners.sessions.end_for_user("u1", now=NOW + 1) == 2
    events = await session_events(owners)
    assert [e.detail for e in events] == [
        {"reason": "sign-out", "revoked_grants": 0, "revoked_tokens": 0, "kept_offline_grants": 0}
    ] * 2


@pytest.mark.parametrize(
    ("scope", "kept"),
    [
        (frozenset({"offline_access"}), True),
        (frozenset({"read", "offline_access", "write"}), True),
        # scope tokens are compared whole and case-sensitively (RFC 6749 §3.3)
        (frozenset({"OFFLINE_ACCESS"}), False),
        (frozenset({"offline_accessx"}), False),
        (frozenset({"xoffline_access"}), False),
        (frozenset({"offline", "access"}), False),
        (frozenset(), False),
    ],
)
async def test_only_the_offline_access_scope_itself_keeps_a_grant(
    owners: Store, scope: frozenset[str], kept: bool
) -> None:
    await owners.sessions.add(session("s1"))
    await owners.tokens.add_refresh(refresh("rt-1", "g1", "sid-s1", scope))
    await owners.sessions.end("s1", now=NOW + 1)
    assert await is_live(owners, "rt-1") is kept


@pytest.mark.parametrize("sid", ["%", "_", "sid-s1%", "sid-s1 ", "SID-S1", "sid-'s1", "sid-s"])
async def test_a_sid_that_looks_like_another_ends_only_its_own_grants(
    owners: Store, sid: str
) -> None:
    await owners.sessions.add(session("s1"))
    await owners.sessions.add(session("other", sid=sid))
    await owners.tokens.add_refresh(refresh("rt-1", "g1", "sid-s1", ONLINE))
    await owners.tokens.add_refresh(refresh("rt-2", "g2", sid, ONLINE))
    assert await owners.sessions.end("other", now=NOW + 1) is True
    assert await is_live(owners, "rt-1")
    assert not await is_live(owners, "rt-2")


@pytest.mark.parametrize("value", ["", "\x00", "a\x00b", "\ud800", "x" * 10_000, "' OR 1=1 --"])
async def test_hostile_session_and_user_values_end_nothing(owners: Store, value: str) -> None:
    await owners.sessions.add(session("s1"))
    await owners.tokens.add_refresh(refresh("rt-1", "g1", "sid-s1", ONLINE))
    assert await owners.sessions.end(value, now=NOW + 1) is False
    assert await owners.sessions.end_for_user(value, now=NOW + 1) == 0
    assert await is_live(owners, "rt-1")
    assert await session_events(owners) == []


async def test_a_deleted_users_grants_stay_revoked_past_any_purge(owners: Store) -> None:
    store = owners
    await store.sessions.add(session("s1"))
    await store.tokens.add_refresh(refresh("rt-1", "g1", "sid-s1", ONLINE))
    await store.tokens.add_access(make_access("jti-1", grant_id="g1", expires_at=NOW + 60))
    # as `ostiary users delete` does it: the sessions end first, then the user goes
    assert await store.sessions.end_for_user("u1", now=NOW + 1, reason="user deleted") == 1
    assert await store.users.delete("u1") is True
    while (await store.tokens.purge_expired(before=NOW + 10**6)).more:
        pass
    assert await store.tokens.is_revoked("jti-1", "g1")


# -- races ---------------------------------------------------------------------------------

FAMILIES = 30


async def seed_families(store: Store) -> None:
    await store.sessions.add(session("s1"))
    for i in range(FAMILIES):
        await store.codes.put(make_code(f"code-{i}", grant_id=f"g{i}", sid="sid-s1", scope=ONLINE))
        await store.codes.consume(f"code-{i}", now=NOW)
        await store.tokens.add_refresh(refresh(f"rt-{i}-0", f"g{i}", "sid-s1", ONLINE))


async def refresh_chain(store: Store, i: int, rounds: int) -> list[str]:
    """Rotate family i `rounds` times, as fast as it can; the hashes it wrote."""
    written = []
    for n in range(rounds):
        new = refresh(f"rt-{i}-{n + 1}", f"g{i}", "sid-s1", ONLINE)
        rotation = await store.tokens.rotate_refresh(f"rt-{i}-{n}", new, now=NOW)
        if rotation.status != "rotated":
            break
        written.append(new.token_hash)
    return written


@pytest.mark.parametrize("at", [0, FAMILIES // 2, FAMILIES])
async def test_refreshes_racing_the_end_leave_no_live_token_of_the_session(
    owners: Store, at: int
) -> None:
    store = owners
    await seed_families(store)
    chains: list[Awaitable[Any]] = [refresh_chain(store, i, 3) for i in range(FAMILIES)]
    chains.insert(at, store.sessions.end("s1", now=NOW))
    results = await asyncio.gather(*chains)
    written = [token for chain in results if isinstance(chain, list) for token in chain]
    for i in range(FAMILIES):
        for n in range(4):
            assert not await is_live(store, f"rt-{i}-{n}")
        # the last token of each family can never be rotated again
        last = f"rt-{i}-{len(results[i + (i >= at)])}"
        rotation = await store.tokens.rotate_refresh(
            last, refresh("after", f"g{i}", "sid-s1", ONLINE), now=NOW
        )
        assert rotation.status == "invalid"
        assert await store.tokens.is_revoked("jti-any", f"g{i}")
    assert len(written) <= 3 * FAMILIES


async def test_redemptions_racing_the_end_leave_no_live_token_of_the_session(owners: Store) -> None:
    """A code of the session redeemed while it ends: its refresh token, written after the
    code was consumed (in its own transaction), is dead whichever commits first."""
    store = owners
    await store.sessions.add(session("s1"))
    for i in range(FAMILIES):
        await store.codes.put(make_code(f"code-{i}", grant_id=f"g{i}", sid="sid-s1", scope=ONLINE))

    async def redeem(i: int) -> None:
        if (await store.codes.consume(f"code-{i}", now=NOW)).code is not None:
            await store.tokens.add_refresh(refresh(f"rt-{i}", f"g{i}", "sid-s1", ONLINE))

    racers: list[Awaitable[Any]] = [redeem(i) for i in range(FAMILIES)]
    racers.insert(FAMILIES // 2, store.sessions.end("s1", now=NOW))
    await asyncio.gather(*racers)
    for i in range(FAMILIES):
        assert not await is_live(store, f"rt-{i}")


async def test_a_code_for_an_ended_session_is_refused(owners: Store) -> None:
    store = owners
    await store.sessions.add(session("s1"))
    await store.sessions.add(session("s2"))
    assert await store.sessions.end("s1", now=NOW) is True
    assert await store.codes.put(make_code("code-1", grant_id="g1", sid="sid-s1")) is False
    assert await store.codes.peek("code-1") is None
    assert await store.codes.put(make_code("code-2", grant_id="g2", sid="sid-s2")) is True
    assert await store.codes.put(make_code("code-3", grant_id="g3", sid=None)) is True
    # a sid this store never saw: nothing to refuse it for
    assert await store.codes.put(make_code("code-4", grant_id="g4", sid="sid-other")) is True


async def test_codes_made_while_the_session_ends_are_never_redeemable(owners: Store) -> None:
    """An authorization answered while the person logs out elsewhere: each code is refused,
    or stored before the end and then revoked with it."""
    store = owners
    await store.sessions.add(session("s1"))
    racers: list[Awaitable[Any]] = [
        store.codes.put(make_code(f"code-{i}", grant_id=f"g{i}", sid="sid-s1", scope=ONLINE))
        for i in range(FAMILIES)
    ]
    racers.insert(FAMILIES // 2, store.sessions.end("s1", now=NOW))
    await asyncio.gather(*racers)
    for i in range(FAMILIES):
        assert (await store.codes.consume(f"code-{i}", now=NOW)).code is None
        assert await store.tokens.is_revoked("jti-any", f"g{i}") or (
            await store.codes.peek(f"code-{i}") is None
        )
