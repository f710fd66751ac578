"""The refresh grant: rotation on every use, reuse revokes the family, scope only narrows."""

from __future__ import annotations

from typing import Any

import pytest
from core_context import ApiFactory, ClientFactory, Clock, UserFactory
from token_requests import (
    basic,
    code_params,
    confidential_client,
    put_code,
    snapshot,
    token_request,
)

from ostiary.jose import jwt
from ostiary.jose.jwk import JWK
from ostiary.oauth.context import Context
from ostiary.oauth.introspection import handle_introspection_request
from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.models import Client
from ostiary.oauth.token_endpoint import TokenResponse, handle_token_request
from ostiary.oauth.token_hash import hash_token

pytestmark = pytest.mark.anyio

READ_WRITE = frozenset({"read", "write"})
API_A = "https://a.example/api"
API_B = "https://b.example/api"


async def call(ctx: Context, client: Client, params: dict[str, Any], secret: str) -> TokenResponse:
    if secret:
        request = token_request(params, authorization=basic(client.client_id, secret))
    else:
        request = token_request({**params, "client_id": client.client_id})
    return await handle_token_request(request, ctx)


async def start(
    ctx: Context, client: Client, user_id: str, secret: str = "", **code: Any
) -> dict[str, Any]:
    """Tokens from a fresh authorization code grant."""
    value, verifier, _ = await put_code(ctx, client, user_id=user_id, **code)
    response = await call(ctx, client, code_params(value, verifier), secret)
    assert response.status == 200, response.body
    return response.body


def refresh_params(token: str, **extra: Any) -> dict[str, Any]:
    return {"grant_type": "refresh_token", "refresh_token": token, **extra}


async def refused(
    ctx: Context, store: MemoryStore, client: Client, params: dict[str, Any], secret: str = ""
) -> TokenResponse:
    before = snapshot(store)
    response = await call(ctx, client, params, secret)
    assert snapshot(store) == before
    assert response.headers["Cache-Control"] == "no-store"
    return response


def expect(response: TokenResponse, error: str, status: int = 400) -> None:
    assert (response.status, response.body["error"]) == (status, error), response.body


async def is_active(ctx: Context, token: str, client: Client, secret: str) -> bool:
    response = await handle_introspection_request(
        token_request({"token": token}, authorization=basic(client.client_id, secret)), ctx
    )
    return bool(response.body["active"])


async def test_refresh_rotates(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    clock: Clock,
) -> None:
    client, secret = await confidential_client(client_factory)
    user = await user_factory()
    first = await start(ctx, client, user.user_id, secret, scope=READ_WRITE)
    clock.advance(30)
    response = await call(ctx, client, refresh_params(first["refresh_token"]), secret)
    assert response.status == 200
    body = response.body
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert body["refresh_token"] != first["refresh_token"]
    assert body["scope"] == "read write"
    old = await store.tokens.find_refresh(hash_token(first["refresh_token"]), now=clock.now)
    new = await store.tokens.find_refresh(hash_token(body["refresh_token"]), now=clock.now)
    assert old is None
    assert new is not None
    assert new.expires_at == clock.now + ctx.config.refresh_token_ttl
    assert store.audit.events[-1].detail["grant_type"] == "refresh_token"


async def test_reused_refresh_token_revokes_the_family_and_says_so(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    user = await user_factory()
    first = await start(ctx, client, user.user_id, secret)
    second = (await call(ctx, client, refresh_params(first["refresh_token"]), secret)).body
    # An attacker (or a confused client) presents the rotated token again.
    expect(await call(ctx, client, refresh_params(first["refresh_token"]), secret), "invalid_grant")
    # The whole family is gone: the newest refresh token and every access token.
    expect(
        await call(ctx, client, refresh_params(second["refresh_token"]), secret), "invalid_grant"
    )
    assert not await is_active(ctx, first["access_token"], client, secret)
    assert not await is_active(ctx, second["access_token"], client, secret)
    reuse = [e for e in store.audit.events if e.event == "refresh.reuse_detected"]
    assert len(reuse) == 1
    assert reuse[0].detail["family_revoked"] is True
    assert reuse[0].client_id == client.client_id


async def test_reuse_does_not_touch_other_families(
    ctx: Context, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    user = await user_factory()
    family_a = await start(ctx, client, user.user_id, secret)
    family_b = await start(ctx, client, user.user_id, secret)
    await call(ctx, client, refresh_params(family_a["refresh_token"]), secret)
    await call(ctx, client, refresh_params(family_a["refresh_token"]), secret)
    response = await call(ctx, client, refresh_params(family_b["refresh_token"]), secret)
    assert response.status == 200


async def test_public_client_refresh_tokens_rotate_too(
    ctx: Context, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client = await client_factory()
    user = await user_factory()
    first = await start(ctx, client, user.user_id)
    second = await call(ctx, client, refresh_params(first["refresh_token"]), "")
    assert second.status == 200
    expect(await call(ctx, client, refresh_params(first["refresh_token"]), ""), "invalid_grant")
    expect(
        await call(ctx, client, refresh_params(second.body["refresh_token"]), ""), "invalid_grant"
    )


async def test_refresh_token_of_another_client_is_invalid_grant(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    owner = await client_factory()
    thief = await client_factory()
    user = await user_factory()
    tokens = await start(ctx, owner, user.user_id)
    expect(
        await refused(ctx, store, thief, refresh_params(tokens["refresh_token"])), "invalid_grant"
    )
    assert (await call(ctx, owner, refresh_params(tokens["refresh_token"]), "")).status == 200


async def test_scope_may_narrow_and_the_family_keeps_the_grant(
    ctx: Context,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    es256_key: JWK,
    clock: Clock,
) -> None:
    client = await client_factory()
    user = await user_factory()
    first = await start(ctx, client, user.user_id, scope=READ_WRITE)
    narrow = await call(ctx, client, refresh_params(first["refresh_token"], scope="read"), "")
    assert narrow.body["scope"] == "read"
    claims = jwt.decode(
        narrow.body["access_token"],
        es256_key,
        algorithms=["ES256"],
        audience=ctx.config.audience,
        now=clock.now,
    )
    assert claims["scope"] == "read"
    wide = await call(ctx, client, refresh_params(narrow.body["refresh_token"]), "")
    assert wide.body["scope"] == "read write"


@pytest.mark.parametrize(
    "scope", ["read write admin", "admin", "read\\"], ids=["wider", "other", "bad"]
)
async def test_scope_never_widens(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    scope: str,
) -> None:
    client = await client_factory(scopes=frozenset({"read", "write", "admin"}))
    user = await user_factory()
    tokens = await start(ctx, client, user.user_id, scope=READ_WRITE)
    params = refresh_params(tokens["refresh_token"], scope=scope)
    expect(await refused(ctx, store, client, params), "invalid_scope")


async def test_resources_may_narrow_but_not_widen(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    api_factory: ApiFactory,
) -> None:
    await api_factory(API_A, API_B, "https://c.example/api")  # c: registered, not granted
    client = await client_factory()
    user = await user_factory()
    tokens = await start(ctx, client, user.user_id, resources=(API_A, API_B))
    bad = refresh_params(tokens["refresh_token"], resource="https://c.example/api")
    expect(await refused(ctx, store, client, bad), "invalid_target")
    good = await call(ctx, client, refresh_params(tokens["refresh_token"], resource=API_B), "")
    assert good.status == 200


async def test_unknown_refresh_token_is_invalid_grant(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client = await client_factory()
    expect(await refused(ctx, store, client, refresh_params("not-a-token")), "invalid_grant")


async def test_missing_refresh_token_is_invalid_request(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client = await client_factory()
    expect(await refused(ctx, store, client, {"grant_type": "refresh_token"}), "invalid_request")


async def test_expired_refresh_token_is_invalid_grant(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    clock: Clock,
) -> None:
    client = await client_factory()
    user = await user_factory()
    tokens = await start(ctx, client, user.user_id)
    clock.advance(ctx.config.refresh_token_ttl)
    expect(
        await refused(ctx, store, client, refresh_params(tokens["refresh_token"])), "invalid_grant"
    )


async def test_refresh_token_of_a_deleted_user_is_invalid_grant(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client = await client_factory()
    user = await user_factory()
    tokens = await start(ctx, client, user.user_id)
    await store.users.delete(user.user_id)
    expect(
        await refused(ctx, store, client, refresh_params(tokens["refresh_token"])), "invalid_grant"
    )


async def test_client_without_refresh_grant_is_unauthorized_client(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client = await client_factory()
    user = await user_factory()
    tokens = await start(ctx, client, user.user_id)
    await store.clients.delete(client.client_id)
    limited = Client(
        client_id=client.client_id,
        name=client.name,
        auth_method="none",
        grant_types=frozenset({"authorization_code"}),
    )
    await store.clients.add(limited)
    params = refresh_params(tokens["refresh_token"])
    expect(await refused(ctx, store, limited, params), "unauthorized_client")


async def test_revoked_family_cannot_refresh(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    clock: Clock,
) -> None:
    client = await client_factory()
    user = await user_factory()
    tokens = await start(ctx, client, user.user_id)
    found = await store.tokens.find_refresh(hash_token(tokens["refresh_token"]), now=clock.now)
    assert found is not None
    await store.tokens.revoke_grant(found.grant_id, now=clock.now)
    expect(
        await refused(ctx, store, client, refresh_params(tokens["refresh_token"])), "invalid_grant"
    )
