"""Token introspection (RFC 7662): confidential clients only; anything not live is inactive."""

from __future__ import annotations

from typing import Any

import pytest
from core_context import ISSUER, ClientFactory, Clock, UserFactory
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
from ostiary.oauth.token_endpoint import handle_token_request

pytestmark = pytest.mark.anyio

INACTIVE = {"active": False}


async def introspect(
    ctx: Context, store: MemoryStore, client: Client, secret: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Introspection never changes anything; returns the body of a 200 answer."""
    before = snapshot(store)
    response = await handle_introspection_request(
        token_request(params, authorization=basic(client.client_id, secret)), ctx
    )
    assert snapshot(store) == before
    assert response.status == 200, response.body
    assert response.headers["Cache-Control"] == "no-store"
    return response.body


async def tokens(ctx: Context, client: Client, secret: str, user_id: str, **code: Any) -> Any:
    value, verifier, stored = await put_code(ctx, client, user_id=user_id, **code)
    params = code_params(value, verifier)
    response = await handle_token_request(
        token_request(params, authorization=basic(client.client_id, secret)), ctx
    )
    assert response.status == 200
    return response.body, stored


async def test_live_jwt_access_token_is_described(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    clock: Clock,
) -> None:
    client, secret = await confidential_client(client_factory)
    resource_server, rs_secret = await confidential_client(client_factory)
    user = await user_factory()
    body, stored = await tokens(ctx, client, secret, user.user_id, scope=frozenset({"read"}))
    info = await introspect(ctx, store, resource_server, rs_secret, {"token": body["access_token"]})
    assert info == {
        "active": True,
        "token_type": "Bearer",
        "scope": "read",
        "client_id": client.client_id,
        "sub": user.user_id,
        "aud": ISSUER,
        "iss": ISSUER,
        "exp": clock.now + 600,
        "iat": clock.now,
        "jti": info["jti"],
        "auth_time": stored.auth_time,
    }


async def test_live_opaque_access_token_is_described(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    clock: Clock,
) -> None:
    client, secret = await confidential_client(client_factory, token_format="opaque")
    user = await user_factory()
    body, _ = await tokens(ctx, client, secret, user.user_id)
    info = await introspect(ctx, store, client, secret, {"token": body["access_token"]})
    assert info["active"] is True
    assert (info["sub"], info["client_id"], info["exp"]) == (
        user.user_id,
        client.client_id,
        clock.now + 600,
    )
    clock.advance(600)
    assert await introspect(ctx, store, client, secret, {"token": body["access_token"]}) == INACTIVE


async def test_refresh_token_is_described_to_its_client_only(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    other, other_secret = await confidential_client(client_factory)
    user = await user_factory()
    body, _ = await tokens(ctx, client, secret, user.user_id)
    params = {"token": body["refresh_token"], "token_type_hint": "refresh_token"}
    mine = await introspect(ctx, store, client, secret, params)
    assert (mine["active"], mine["client_id"], mine["sub"]) == (
        True,
        client.client_id,
        user.user_id,
    )
    assert "token_type" not in mine
    assert await introspect(ctx, store, other, other_secret, params) == INACTIVE


async def test_rotated_refresh_token_is_inactive(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    user = await user_factory()
    body, _ = await tokens(ctx, client, secret, user.user_id)
    rotated = await handle_token_request(
        token_request(
            {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
            authorization=basic(client.client_id, secret),
        ),
        ctx,
    )
    assert rotated.status == 200
    assert (
        await introspect(ctx, store, client, secret, {"token": body["refresh_token"]}) == INACTIVE
    )


async def test_jwt_of_a_revoked_grant_is_inactive(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    clock: Clock,
) -> None:
    client, secret = await confidential_client(client_factory)
    user = await user_factory()
    body, stored = await tokens(ctx, client, secret, user.user_id)
    await store.tokens.revoke_grant(stored.grant_id, now=clock.now)
    assert await introspect(ctx, store, client, secret, {"token": body["access_token"]}) == INACTIVE


async def test_jwt_of_a_deleted_client_is_inactive(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
) -> None:
    # Deleting a client removes everything issued to it, including the record that tied its
    # JWTs to their grant; introspection must not then read them as live again.
    client, secret = await confidential_client(client_factory)
    resource_server, rs_secret = await confidential_client(client_factory)
    user = await user_factory()
    body, _ = await tokens(ctx, client, secret, user.user_id)
    cc = await handle_token_request(
        token_request(
            {"grant_type": "client_credentials"}, authorization=basic(client.client_id, secret)
        ),
        ctx,
    )
    assert cc.status == 200
    assert await store.clients.delete(client.client_id)
    for token in (body["access_token"], cc.body["access_token"]):
        info = await introspect(ctx, store, resource_server, rs_secret, {"token": token})
        assert info == INACTIVE


async def test_expired_jwt_is_inactive(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    clock: Clock,
) -> None:
    client, secret = await confidential_client(client_factory)
    user = await user_factory()
    body, _ = await tokens(ctx, client, secret, user.user_id)
    clock.advance(599)
    assert (await introspect(ctx, store, client, secret, {"token": body["access_token"]}))["active"]
    clock.advance(1)
    assert await introspect(ctx, store, client, secret, {"token": body["access_token"]}) == INACTIVE


def _jwt(key: JWK, now: int, typ: str = "at+jwt", **changes: Any) -> str:
    claims = {
        "iss": ISSUER,
        "sub": "u",
        "aud": ISSUER,
        "exp": now + 60,
        "iat": now,
        "jti": "j",
        "client_id": "app",
        **changes,
    }
    return jwt.encode(claims, key, alg="ES256", headers={"typ": typ})


@pytest.mark.parametrize(
    "case",
    ["foreign-key", "typ-jwt", "other-issuer", "garbage", "unknown-opaque", "alg-none"],
)
async def test_tokens_we_did_not_issue_are_inactive_and_say_nothing_more(  # noqa: PLR0917
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    es256_key: JWK,
    clock: Clock,
    case: str,
) -> None:
    client, secret = await confidential_client(client_factory)
    token = {
        "foreign-key": lambda: _jwt(
            JWK.generate("EC", crv="P-256", alg="ES256", kid=es256_key.kid), clock.now
        ),
        "typ-jwt": lambda: _jwt(es256_key, clock.now, typ="JWT"),
        "other-issuer": lambda: _jwt(es256_key, clock.now, iss="https://evil.example"),
        "garbage": lambda: "a.b.c",
        "unknown-opaque": lambda: "x" * 43,
        "alg-none": lambda: "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.e30.",
    }[case]()
    assert await introspect(ctx, store, client, secret, {"token": token}) == INACTIVE


async def test_public_client_may_not_introspect(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client = await client_factory()
    before = snapshot(store)
    response = await handle_introspection_request(
        token_request({"token": "x", "client_id": client.client_id}), ctx
    )
    assert snapshot(store) == before
    assert (response.status, response.body["error"]) == (401, "invalid_client")
    assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize(
    ("params", "authorization", "status", "error"),
    [
        ({"token": "x"}, None, 401, "invalid_client"),
        ({"token": "x"}, "wrong", 401, "invalid_client"),
        ({}, "right", 400, "invalid_request"),
        ({"token": ["x", "y"]}, "right", 400, "invalid_request"),
        ({"token": "x" * 20000}, "right", 400, "invalid_request"),
    ],
    ids=["no-auth", "wrong-secret", "no-token", "repeated-token", "oversized-token"],
)
async def test_bad_introspection_requests(  # noqa: PLR0917 - pytest fixtures and parameters
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    params: dict[str, Any],
    authorization: str | None,
    status: int,
    error: str,
) -> None:
    client, secret = await confidential_client(client_factory)
    header = None
    if authorization is not None:
        header = basic(client.client_id, secret if authorization == "right" else "nope")
    before = snapshot(store)
    response = await handle_introspection_request(token_request(params, authorization=header), ctx)
    assert snapshot(store) == before
    assert (response.status, response.body["error"]) == (status, error)
    assert response.headers["Cache-Control"] == "no-store"


async def test_wrong_content_type_is_invalid_request(
    ctx: Context, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    response = await handle_introspection_request(
        token_request(
            {"token": "x"}, authorization=basic(client.client_id, secret), content_type="text/plain"
        ),
        ctx,
    )
    assert (response.status, response.body["error"]) == (400, "invalid_request")
