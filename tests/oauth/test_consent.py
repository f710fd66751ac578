"""Remembered consent: per user, client and scope set; asked again for more; revocable."""

from __future__ import annotations

import pytest

from ostiary.oauth.consent import has_consent, record_consent, revoke_consent
from ostiary.oauth.context import Context
from ostiary.oauth.memory import MemoryStore

pytestmark = pytest.mark.anyio

READ = frozenset({"read"})
READ_WRITE = frozenset({"read", "write"})


async def test_never_approved_client_needs_consent_even_for_empty_scope(ctx: Context) -> None:
    assert not await has_consent("alice", "app", frozenset(), ctx=ctx)


async def test_approved_scope_and_its_subsets_need_no_consent(ctx: Context) -> None:
    await record_consent("alice", "app", READ_WRITE, ctx=ctx)
    assert await has_consent("alice", "app", READ_WRITE, ctx=ctx)
    assert await has_consent("alice", "app", READ, ctx=ctx)
    assert await has_consent("alice", "app", frozenset(), ctx=ctx)


async def test_asking_for_more_than_approved_needs_consent(ctx: Context) -> None:
    await record_consent("alice", "app", READ, ctx=ctx)
    assert not await has_consent("alice", "app", READ_WRITE, ctx=ctx)


async def test_consent_for_one_client_does_not_cover_another(ctx: Context) -> None:
    await record_consent("alice", "app", READ_WRITE, ctx=ctx)
    assert not await has_consent("alice", "other-app", READ, ctx=ctx)


async def test_consent_of_one_user_does_not_cover_another(ctx: Context) -> None:
    await record_consent("alice", "app", READ_WRITE, ctx=ctx)
    assert not await has_consent("mallory", "app", READ, ctx=ctx)


async def test_approvals_accumulate(ctx: Context, store: MemoryStore) -> None:
    await record_consent("alice", "app", READ, ctx=ctx)
    consent = await record_consent("alice", "app", frozenset({"write"}), ctx=ctx)
    assert consent.scope == READ_WRITE
    assert await has_consent("alice", "app", READ_WRITE, ctx=ctx)
    assert [e.event for e in store.audit.events] == ["consent.granted", "consent.granted"]
    assert store.audit.events[-1].detail == {"scope": "write", "remembered": True}


async def test_approving_what_is_remembered_writes_nothing(
    ctx: Context, store: MemoryStore
) -> None:
    first = await record_consent("alice", "app", READ_WRITE, ctx=ctx)
    again = await record_consent("alice", "app", READ, ctx=ctx)
    assert again == first
    assert len(store.audit.events) == 1


async def test_revoked_consent_is_asked_again(ctx: Context, store: MemoryStore) -> None:
    await record_consent("alice", "app", READ, ctx=ctx)
    assert await revoke_consent("alice", "app", ctx=ctx)
    assert not await has_consent("alice", "app", READ, ctx=ctx)
    event = store.audit.events[-1]
    assert (event.event, event.user_id, event.client_id) == ("consent.revoked", "alice", "app")


async def test_revoking_unknown_consent_is_false_and_silent(
    ctx: Context, store: MemoryStore
) -> None:
    assert not await revoke_consent("alice", "app", ctx=ctx)
    assert store.audit.events == []


async def test_revoking_one_client_leaves_others(ctx: Context) -> None:
    await record_consent("alice", "app", READ, ctx=ctx)
    await record_consent("alice", "other-app", READ, ctx=ctx)
    await revoke_consent("alice", "app", ctx=ctx)
    assert await has_consent("alice", "other-app", READ, ctx=ctx)
