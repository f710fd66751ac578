"""The client credentials grant: confidential clients acting for themselves, no refresh."""

from __future__ import annotations

from typing import Any

import pytest
from core_context import ApiFactory, ClientFactory, Clock
from token_requests import basic, confidential_client, snapshot, token_request

from ostiary.jose import jwt
from ostiary.jose.jwk import JWK
from ostiary.oauth.context import Context
from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.token_endpoint import TokenResponse, handle_token_request
from ostiary.oauth.token_hash import hash_token

pytestmark = pytest.mark.anyio

API = "https://api.example"


async def call(ctx: Context, client_id: str, secret: str, **params: Any) -> TokenResponse:
    request = token_request(
        {"grant_type": "client_credentials", **params}, authorization=basic(client_id, secret)
    )
    return await handle_token_request(request, ctx)


async def refused(
    ctx: Context, store: MemoryStore, client_id: str, secret: str, **params: Any
) -> TokenResponse:
    before = snapshot(store)
    response = await call(ctx, client_id, secret, **params)
    assert snapshot(store) == before
    assert response.headers["Cache-Control"] == "no-store"
    return response


def expect(response: TokenResponse, error: str, status: int = 400) -> None:
    assert (response.status, response.body["error"]) == (status, error), response.body


async def test_client_gets_a_token_about_itself(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, es256_key: JWK, clock: Clock
) -> None:
    client, secret = await confidential_client(client_factory)
    response = await call(ctx, client.client_id, secret)
    assert response.status == 200
    assert set(response.body) == {"access_token", "token_type", "expires_in", "scope"}
    assert response.body["scope"] == "read write"  # nothing asked: everything registered
    claims = jwt.decode(
        response.body["access_token"],
        es256_key,
        algorithms=["ES256"],
        audience=ctx.config.audience,
        typ="at+jwt",
        now=clock.now,
    )
    assert claims["sub"] == claims["client_id"] == client.client_id
    # Self-contained: a client_credentials JWT is not stored unless revoked.
    assert await store.tokens.find_access(claims["jti"]) is None
    event = store.audit.events[-1]
    assert (event.event, event.user_id, event.grant_id) == ("token.issued", None, None)


async def test_requested_scope_is_narrowed_to_what_the_client_may_have(
    ctx: Context, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    assert (await call(ctx, client.client_id, secret, scope="read")).body["scope"] == "read"
    response = await call(ctx, client.client_id, secret, scope="read admin")
    assert response.body["scope"] == "read"


@pytest.mark.parametrize("scope", ["admin", 'read "x"', "read  write", " read"])
async def test_disallowed_or_malformed_scope_is_invalid_scope(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, scope: str
) -> None:
    client, secret = await confidential_client(client_factory)
    expect(await refused(ctx, store, client.client_id, secret, scope=scope), "invalid_scope")


async def test_resource_sets_the_audience(
    ctx: Context,
    client_factory: ClientFactory,
    api_factory: ApiFactory,
    es256_key: JWK,
    clock: Clock,
) -> None:
    await api_factory(API)
    client, secret = await confidential_client(client_factory)
    response = await call(ctx, client.client_id, secret, resource=API)
    claims = jwt.decode(
        response.body["access_token"], es256_key, algorithms=["ES256"], audience=API, now=clock.now
    )
    assert claims["aud"] == API


@pytest.mark.parametrize("resource", ["api", "https://api.example/#x", "x" * 600])
async def test_bad_resource_is_invalid_target(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, resource: str
) -> None:
    client, secret = await confidential_client(client_factory)
    expect(await refused(ctx, store, client.client_id, secret, resource=resource), "invalid_target")


async def test_public_client_is_unauthorized_client(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client = await client_factory(grant_types=frozenset({"client_credentials"}))
    params = {"grant_type": "client_credentials", "client_id": client.client_id}
    before = snapshot(store)
    response = await handle_token_request(token_request(params), ctx)
    assert snapshot(store) == before
    expect(response, "unauthorized_client")


async def test_client_without_the_grant_is_unauthorized_client(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(
        client_factory, grant_types=frozenset({"authorization_code"})
    )
    expect(await refused(ctx, store, client.client_id, secret), "unauthorized_client")


async def test_wrong_secret_is_invalid_client_with_a_basic_challenge(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client, _ = await confidential_client(client_factory)
    response = await refused(ctx, store, client.client_id, "wrong")
    expect(response, "invalid_client", 401)
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")


async def test_opaque_client_token_is_stored_by_hash(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(client_factory, token_format="opaque")
    token = (await call(ctx, client.client_id, secret)).body["access_token"]
    recorded = await store.tokens.find_access(hash_token(token))
    assert recorded is not None
    assert (recorded.subject, recorded.grant_id) == (client.client_id, None)
