"""Token revocation (RFC 7009): the client revokes its own tokens; unknown ones are a 200."""

from __future__ import annotations

from typing import Any

import pytest
from core_context import ClientFactory, Clock, UserFactory
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
from ostiary.oauth.revocation import handle_revocation_request
from ostiary.oauth.token_endpoint import TokenResponse, handle_token_request

pytestmark = pytest.mark.anyio


def auth(client: Client, secret: str) -> dict[str, Any]:
    if secret:
        return {"authorization": basic(client.client_id, secret)}
    return {}


async def revoke(
    ctx: Context, client: Client, secret: str, params: dict[str, Any], **kw: Any
) -> TokenResponse:
    if not secret:
        params = {**params, "client_id": client.client_id}
    return await handle_revocation_request(token_request(params, **auth(client, secret), **kw), ctx)


async def active(ctx: Context, token: str, client: Client, secret: str) -> bool:
    response = await handle_introspection_request(
        token_request({"token": token}, authorization=basic(client.client_id, secret)), ctx
    )
    return bool(response.body["active"])


async def tokens(ctx: Context, client: Client, secret: str, user_id: str) -> dict[str, Any]:
    value, verifier, _ = await put_code(ctx, client, user_id=user_id)
    params = code_params(value, verifier)
    if not secret:
        params["client_id"] = client.client_id
    response = await handle_token_request(token_request(params, **auth(client, secret)), ctx)
    assert response.status == 200
    return response.body


async def refresh(ctx: Context, client: Client, secret: str, token: str) -> TokenResponse:
    params = {"grant_type": "refresh_token", "refresh_token": token}
    if not secret:
        params["client_id"] = client.client_id
    return await handle_token_request(token_request(params, **auth(client, secret)), ctx)


async def unchanged(
    ctx: Context, store: MemoryStore, client: Client, secret: str, params: dict[str, Any], **kw: Any
) -> TokenResponse:
    before = snapshot(store)
    response = await revoke(ctx, client, secret, params, **kw)
    assert snapshot(store) == before
    assert response.headers["Cache-Control"] == "no-store"
    return response


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token", "something_else"])
async def test_revoking_a_refresh_token_revokes_its_grant(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    hint: str | None,
) -> None:
    client, secret = await confidential_client(client_factory)
    user = await user_factory()
    issued = await tokens(ctx, client, secret, user.user_id)
    params = {"token": issued["refresh_token"]}
    if hint:
        params["token_type_hint"] = hint
    response = await revoke(ctx, client, secret, params)
    assert (response.status, response.body) == (200, {})
    assert response.headers["Cache-Control"] == "no-store"
    response = await refresh(ctx, client, secret, issued["refresh_token"])
    assert (response.status, response.body["error"]) == (400, "invalid_grant")
    # RFC 7009 §2.1: access tokens of the same grant go too.
    assert not await active(ctx, issued["access_token"], client, secret)
    event = store.audit.events[-1]
    assert (event.event, event.detail["token_type"]) == ("token.revoked", "refresh_token")


async def test_revoking_a_jwt_access_token_leaves_the_refresh_token(
    ctx: Context, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    user = await user_factory()
    issued = await tokens(ctx, client, secret, user.user_id)
    response = await revoke(ctx, client, secret, {"token": issued["access_token"]})
    assert response.status == 200
    assert not await active(ctx, issued["access_token"], client, secret)
    renewed = await refresh(ctx, client, secret, issued["refresh_token"])
    assert renewed.status == 200
    assert await active(ctx, renewed.body["access_token"], client, secret)


async def test_revoking_a_client_credentials_jwt_records_it(
    ctx: Context, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    response = await handle_token_request(
        token_request(
            {"grant_type": "client_credentials"}, authorization=basic(client.client_id, secret)
        ),
        ctx,
    )
    token = response.body["access_token"]
    assert await active(ctx, token, client, secret)
    await revoke(ctx, client, secret, {"token": token, "token_type_hint": "access_token"})
    assert not await active(ctx, token, client, secret)


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token"])
async def test_revoking_an_opaque_access_token(
    ctx: Context, client_factory: ClientFactory, user_factory: UserFactory, hint: str | None
) -> None:
    client, secret = await confidential_client(client_factory, token_format="opaque")
    user = await user_factory()
    issued = await tokens(ctx, client, secret, user.user_id)
    params = {"token": issued["access_token"]}
    if hint:
        params["token_type_hint"] = hint
    assert (await revoke(ctx, client, secret, params)).status == 200
    assert not await active(ctx, issued["access_token"], client, secret)
    assert (await refresh(ctx, client, secret, issued["refresh_token"])).status == 200


async def test_public_client_revokes_its_own_refresh_token(
    ctx: Context, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client = await client_factory()
    user = await user_factory()
    issued = await tokens(ctx, client, "", user.user_id)
    assert (await revoke(ctx, client, "", {"token": issued["refresh_token"]})).status == 200
    response = await refresh(ctx, client, "", issued["refresh_token"])
    assert (response.status, response.body["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    "token",
    ["unknown-token-value", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "x" * 4000],
    ids=["unknown", "jwt-shaped-garbage", "alg-none", "long"],
)
async def test_unknown_or_invalid_token_is_200_and_changes_nothing(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, token: str
) -> None:
    client, secret = await confidential_client(client_factory)
    response = await unchanged(ctx, store, client, secret, {"token": token})
    assert (response.status, response.body) == (200, {})


async def test_expired_jwt_is_200_and_changes_nothing(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    clock: Clock,
) -> None:
    client, secret = await confidential_client(client_factory)
    user = await user_factory()
    issued = await tokens(ctx, client, secret, user.user_id)
    clock.advance(ctx.config.access_token_ttl)
    response = await unchanged(ctx, store, client, secret, {"token": issued["access_token"]})
    assert response.status == 200


@pytest.mark.parametrize("kind", ["refresh_token", "access_token"])
async def test_another_clients_token_is_refused_and_kept(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    kind: str,
) -> None:
    owner, owner_secret = await confidential_client(client_factory)
    other, other_secret = await confidential_client(client_factory)
    user = await user_factory()
    issued = await tokens(ctx, owner, owner_secret, user.user_id)
    response = await unchanged(ctx, store, other, other_secret, {"token": issued[kind]})
    assert (response.status, response.body["error"]) == (400, "invalid_request")
    assert await active(ctx, issued["access_token"], owner, owner_secret)


async def test_another_clients_opaque_token_is_refused(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    owner, owner_secret = await confidential_client(client_factory, token_format="opaque")
    other, other_secret = await confidential_client(client_factory)
    user = await user_factory()
    issued = await tokens(ctx, owner, owner_secret, user.user_id)
    response = await unchanged(ctx, store, other, other_secret, {"token": issued["access_token"]})
    assert (response.status, response.body["error"]) == (400, "invalid_request")


async def test_missing_token_is_invalid_request(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    response = await unchanged(ctx, store, client, secret, {"token_type_hint": "access_token"})
    assert (response.status, response.body["error"]) == (400, "invalid_request")


async def test_repeated_token_is_invalid_request(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    response = await unchanged(ctx, store, client, secret, {"token": ["a", "b"]})
    assert (response.status, response.body["error"]) == (400, "invalid_request")


async def test_wrong_content_type_is_invalid_request(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    response = await unchanged(
        ctx, store, client, secret, {"token": "x"}, content_type="application/json"
    )
    assert (response.status, response.body["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("secret", ["wrong", None])
async def test_unauthenticated_revocation_is_invalid_client(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    secret: str | None,
) -> None:
    client, right = await confidential_client(client_factory)
    user = await user_factory()
    issued = await tokens(ctx, client, right, user.user_id)
    before = snapshot(store)
    kw = {"authorization": basic(client.client_id, secret)} if secret else {}
    params = {"token": issued["refresh_token"]}
    if secret is None:
        params["client_id"] = client.client_id
    response = await handle_revocation_request(token_request(params, **kw), ctx)
    assert snapshot(store) == before
    assert (response.status, response.body["error"]) == (401, "invalid_client")


async def test_jwt_signed_by_another_key_is_not_revoked(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, clock: Clock
) -> None:
    client, secret = await confidential_client(client_factory)
    forged = jwt.encode(
        {
            "iss": ctx.config.issuer,
            "sub": "u",
            "aud": ctx.config.audience,
            "exp": clock.now + 60,
            "iat": clock.now,
            "jti": "j",
            "client_id": client.client_id,
        },
        JWK.generate("EC", crv="P-256", alg="ES256"),
        alg="ES256",
        headers={"typ": "at+jwt"},
    )
    response = await unchanged(ctx, store, client, secret, {"token": forged})
    assert response.status == 200
