"""Remembered consent: per user, client and scope set; asked again for more; revocable."""

from __future__ import annotations

from typing import Any

import pytest
from core_context import ClientFactory, UserFactory
from token_requests import basic, code_params, confidential_client, put_code, token_request

from ostiary.oauth.consent import ConsentRevocation, has_consent, record_consent, revoke_consent
from ostiary.oauth.context import Context
from ostiary.oauth.introspection import handle_introspection_request
from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.models import Client
from ostiary.oauth.token_endpoint import TokenResponse, handle_token_request

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
    revocation = await revoke_consent("alice", "app", ctx=ctx)
    assert revocation == ConsentRevocation(consent_revoked=True, revoked_tokens=0)
    assert not await has_consent("alice", "app", READ, ctx=ctx)
    event = store.audit.events[-1]
    assert (event.event, event.user_id, event.client_id) == ("consent.revoked", "alice", "app")
    assert event.detail == {"consent_revoked": True, "revoked_tokens": 0}


async def test_revoking_unknown_consent_is_false_and_silent(
    ctx: Context, store: MemoryStore
) -> None:
    revocation = await revoke_consent("alice", "app", ctx=ctx)
    assert revocation == ConsentRevocation(consent_revoked=False, revoked_tokens=0)
    assert store.audit.events == []


async def test_revoking_one_client_leaves_others(ctx: Context) -> None:
    await record_consent("alice", "app", READ, ctx=ctx)
    await record_consent("alice", "other-app", READ, ctx=ctx)
    await revoke_consent("alice", "app", ctx=ctx)
    assert await has_consent("alice", "other-app", READ, ctx=ctx)


# -- revoking consent ends what the client holds for the user -----------------------------------


async def token_call(
    ctx: Context, client: Client, secret: str, params: dict[str, Any]
) -> TokenResponse:
    return await handle_token_request(
        token_request(params, authorization=basic(client.client_id, secret)), ctx
    )


async def grant_tokens(ctx: Context, client: Client, secret: str, user_id: str) -> Any:
    """An access and a refresh token from a code the user approved, as after a consent page."""
    value, verifier, _ = await put_code(ctx, client, user_id=user_id)
    response = await token_call(ctx, client, secret, code_params(value, verifier))
    assert response.status == 200, response.body
    return response.body


async def is_active(ctx: Context, client: Client, secret: str, token: str) -> bool:
    response = await handle_introspection_request(
        token_request({"token": token}, authorization=basic(client.client_id, secret)), ctx
    )
    assert response.status == 200, response.body
    return bool(response.body["active"])


def refresh(token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token}


async def test_refresh_token_after_consent_revoked_is_invalid_grant(
    ctx: Context, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    user = await user_factory()
    body = await grant_tokens(ctx, client, secret, user.user_id)
    await record_consent(user.user_id, client.client_id, READ, ctx=ctx)

    revocation = await revoke_consent(user.user_id, client.client_id, ctx=ctx)

    # the refresh token and the access token recorded with it
    assert revocation == ConsentRevocation(consent_revoked=True, revoked_tokens=2)
    response = await token_call(ctx, client, secret, refresh(body["refresh_token"]))
    assert (response.status, response.body["error"]) == (400, "invalid_grant")
    assert not await is_active(ctx, client, secret, body["access_token"])
    assert not await is_active(ctx, client, secret, body["refresh_token"])


async def test_rotated_tokens_of_the_grant_are_revoked_too(
    ctx: Context, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    user = await user_factory()
    first = await grant_tokens(ctx, client, secret, user.user_id)
    rotated = await token_call(ctx, client, secret, refresh(first["refresh_token"]))
    assert rotated.status == 200
    await revoke_consent(user.user_id, client.client_id, ctx=ctx)
    for body in (first, rotated.body):
        assert not await is_active(ctx, client, secret, body["access_token"])
    response = await token_call(ctx, client, secret, refresh(rotated.body["refresh_token"]))
    assert response.body["error"] == "invalid_grant"


async def test_code_in_flight_is_not_redeemed_after_consent_revoked(
    ctx: Context, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    user = await user_factory()
    value, verifier, _ = await put_code(ctx, client, user_id=user.user_id)
    await record_consent(user.user_id, client.client_id, READ, ctx=ctx)
    await revoke_consent(user.user_id, client.client_id, ctx=ctx)
    response = await token_call(ctx, client, secret, code_params(value, verifier))
    assert (response.status, response.body["error"]) == (400, "invalid_grant")


async def test_tokens_revoked_even_without_remembered_consent(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    """A one-time approval (not remembered) still let the client act for the user."""
    client, secret = await confidential_client(client_factory)
    user = await user_factory()
    body = await grant_tokens(ctx, client, secret, user.user_id)
    revocation = await revoke_consent(user.user_id, client.client_id, ctx=ctx)
    assert revocation == ConsentRevocation(consent_revoked=False, revoked_tokens=2)
    assert not await is_active(ctx, client, secret, body["access_token"])
    event = store.audit.events[-1]
    assert (event.event, event.detail) == (
        "consent.revoked",
        {"consent_revoked": False, "revoked_tokens": 2},
    )


async def test_revoking_consent_leaves_other_clients_and_users_alone(
    ctx: Context, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    other_client, other_secret = await confidential_client(client_factory)
    alice, bob = await user_factory(), await user_factory()
    alices = await grant_tokens(ctx, client, secret, alice.user_id)
    bobs = await grant_tokens(ctx, client, secret, bob.user_id)
    alices_elsewhere = await grant_tokens(ctx, other_client, other_secret, alice.user_id)

    await revoke_consent(alice.user_id, client.client_id, ctx=ctx)

    assert not await is_active(ctx, client, secret, alices["access_token"])
    assert await is_active(ctx, client, secret, bobs["access_token"])
    assert await is_active(ctx, other_client, other_secret, alices_elsewhere["access_token"])
    for owner, owner_secret, body in [
        (client, secret, bobs),
        (other_client, other_secret, alices_elsewhere),
    ]:
        response = await token_call(ctx, owner, owner_secret, refresh(body["refresh_token"]))
        assert response.status == 200, response.body
