"""The authorization code grant: PKCE, exact redirect URI, single use, 60 s, replay revocation."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from core_context import ISSUER, ApiFactory, ClientFactory, Clock, UserFactory
from token_requests import (
    ALL_GRANTS,
    REDIRECT_URI,
    basic,
    code_params,
    confidential_client,
    put_code,
    snapshot,
    token_request,
)

from ostiary.jose import jwt
from ostiary.jose.jwk import JWK
from ostiary.oauth.authorize import approve, parse_authorization_request
from ostiary.oauth.context import Context
from ostiary.oauth.introspection import handle_introspection_request
from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.models import Client
from ostiary.oauth.pkce import s256_challenge
from ostiary.oauth.token_endpoint import TokenResponse, handle_token_request
from ostiary.oauth.token_hash import hash_token

pytestmark = pytest.mark.anyio

API_A = "https://a.example/api"
API_B = "https://b.example/api"


async def redeem(
    ctx: Context, client: Client, params: dict[str, Any], secret: str = ""
) -> TokenResponse:
    if secret:
        return await handle_token_request(
            token_request(params, authorization=basic(client.client_id, secret)), ctx
        )
    return await handle_token_request(token_request({**params, "client_id": client.client_id}), ctx)


async def refused(
    ctx: Context, store: MemoryStore, client: Client, params: dict[str, Any], secret: str = ""
) -> TokenResponse:
    before = snapshot(store)
    response = await redeem(ctx, client, params, secret)
    assert snapshot(store) == before
    assert response.headers["Cache-Control"] == "no-store"
    return response


def expect(response: TokenResponse, error: str, status: int = 400) -> None:
    assert (response.status, response.body["error"]) == (status, error), response.body


async def test_code_redeems_for_tokens(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, es256_key: JWK, clock: Clock
) -> None:
    client, secret = await confidential_client(client_factory)
    code, verifier, stored = await put_code(ctx, client, scope=frozenset({"read", "write"}))
    response = await redeem(ctx, client, code_params(code, verifier), secret)
    assert response.status == 200
    body = response.body
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 600, "read write")
    assert response.headers["Cache-Control"] == "no-store"
    claims = jwt.decode(
        body["access_token"],
        es256_key,
        algorithms=["ES256"],
        audience=ISSUER,
        typ="at+jwt",
        now=clock.now,
    )
    assert (claims["sub"], claims["client_id"]) == (stored.user_id, client.client_id)
    assert claims["auth_time"] == stored.auth_time
    refresh = await store.tokens.find_refresh(hash_token(body["refresh_token"]), now=clock.now)
    assert refresh is not None
    assert (refresh.grant_id, refresh.client_id) == (stored.grant_id, client.client_id)
    recorded = await store.tokens.find_access(claims["jti"])
    assert recorded is not None
    assert recorded.grant_id == stored.grant_id


async def test_issuance_is_audited_without_any_token(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    code, verifier, stored = await put_code(ctx, client)
    body = (await redeem(ctx, client, code_params(code, verifier), secret)).body
    event = store.audit.events[-1]
    assert (event.event, event.client_id, event.user_id, event.grant_id) == (
        "token.issued",
        client.client_id,
        stored.user_id,
        stored.grant_id,
    )
    assert event.detail["grant_type"] == "authorization_code"
    text = repr(store.audit.events)
    for secret_value in (body["access_token"], body["refresh_token"], code, verifier, secret):
        assert secret_value not in text


async def test_public_client_redeems_with_pkce_and_gets_a_bound_refresh_token(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, clock: Clock
) -> None:
    client = await client_factory()
    code, verifier, _ = await put_code(ctx, client)
    response = await redeem(ctx, client, code_params(code, verifier))
    assert response.status == 200
    refresh = await store.tokens.find_refresh(
        hash_token(response.body["refresh_token"]), now=clock.now
    )
    assert refresh is not None
    assert refresh.client_id == client.client_id


async def test_client_without_refresh_grant_gets_no_refresh_token(
    ctx: Context, client_factory: ClientFactory
) -> None:
    client = await client_factory(grant_types=frozenset({"authorization_code"}))
    code, verifier, _ = await put_code(ctx, client)
    response = await redeem(ctx, client, code_params(code, verifier))
    assert response.status == 200
    assert "refresh_token" not in response.body


async def test_opaque_client_gets_an_opaque_access_token(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client = await client_factory(token_format="opaque")
    code, verifier, _ = await put_code(ctx, client)
    token = (await redeem(ctx, client, code_params(code, verifier))).body["access_token"]
    assert "." not in token
    recorded = await store.tokens.find_access(hash_token(token))
    assert recorded is not None
    assert recorded.format == "opaque"


async def test_code_from_the_authorization_endpoint_redeems(
    ctx: Context, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client = await client_factory()
    user = await user_factory()
    verifier = secrets.token_urlsafe(48)
    request = await parse_authorization_request(
        {
            "response_type": ["code"],
            "client_id": [client.client_id],
            "redirect_uri": [REDIRECT_URI],
            "scope": ["read"],
            "state": ["s1"],
            "code_challenge": [s256_challenge(verifier)],
            "code_challenge_method": ["S256"],
        },
        ctx,
    )
    location = await approve(request, user.user_id, auth_time=ctx.now(), ctx=ctx)
    code = parse_qs(urlsplit(location).query)["code"][0]
    response = await redeem(ctx, client, code_params(code, verifier))
    assert response.status == 200, response.body
    assert response.body["scope"] == "read"


# --- PKCE -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "verifier",
    [secrets.token_urlsafe(48), "a" * 42, "a" * 129, "not valid verifier with spaces" * 3],
    ids=["wrong", "too-short", "too-long", "bad-characters"],
)
async def test_wrong_verifier_is_invalid_grant_and_leaves_the_code_usable(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, verifier: str
) -> None:
    client = await client_factory()
    code, right, _ = await put_code(ctx, client)
    expect(await refused(ctx, store, client, code_params(code, verifier)), "invalid_grant")
    assert (await redeem(ctx, client, code_params(code, right))).status == 200


async def test_missing_verifier_is_invalid_request(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client = await client_factory()
    code, _, _ = await put_code(ctx, client)
    params = code_params(code, "x")
    del params["code_verifier"]
    expect(await refused(ctx, store, client, params), "invalid_request")


async def test_challenge_as_verifier_is_invalid_grant(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    # The challenge travelled through the browser; presenting it must not pass (no `plain`).
    client = await client_factory()
    code, _, stored = await put_code(ctx, client)
    params = code_params(code, stored.code_challenge)
    expect(await refused(ctx, store, client, params), "invalid_grant")


# --- the code itself --------------------------------------------------------------------------


async def test_missing_code_is_invalid_request(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client = await client_factory()
    params = code_params("x", secrets.token_urlsafe(48))
    del params["code"]
    expect(await refused(ctx, store, client, params), "invalid_request")


async def test_unknown_code_is_invalid_grant(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client = await client_factory()
    await put_code(ctx, client)
    params = code_params(secrets.token_urlsafe(32), secrets.token_urlsafe(48))
    expect(await refused(ctx, store, client, params), "invalid_grant")


async def test_code_of_another_client_is_invalid_grant(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    owner = await client_factory()
    thief = await client_factory()
    code, verifier, _ = await put_code(ctx, owner)
    expect(await refused(ctx, store, thief, code_params(code, verifier)), "invalid_grant")
    assert (await redeem(ctx, owner, code_params(code, verifier))).status == 200


@pytest.mark.parametrize(("age", "ok"), [(59, True), (60, False), (3600, False)])
async def test_code_lives_60_seconds(  # noqa: PLR0917 - pytest fixtures
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    clock: Clock,
    age: int,
    ok: bool,
) -> None:
    client = await client_factory()
    code, verifier, _ = await put_code(ctx, client)
    clock.advance(age)
    if ok:
        assert (await redeem(ctx, client, code_params(code, verifier))).status == 200
    else:
        expect(await refused(ctx, store, client, code_params(code, verifier)), "invalid_grant")


async def test_replayed_code_is_refused_and_revokes_what_it_issued(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, clock: Clock
) -> None:
    client, secret = await confidential_client(client_factory)
    code, verifier, stored = await put_code(ctx, client)
    first = await redeem(ctx, client, code_params(code, verifier), secret)
    assert first.status == 200
    clock.advance(5)
    second = await redeem(ctx, client, code_params(code, verifier), secret)
    expect(second, "invalid_grant")
    # The refresh token of the first redemption is dead ...
    refresh = {"grant_type": "refresh_token", "refresh_token": first.body["refresh_token"]}
    expect(await redeem(ctx, client, refresh, secret), "invalid_grant")
    # ... and so is its access token, as introspection reports.
    introspection = await handle_introspection_request(
        token_request(
            {"token": first.body["access_token"]}, authorization=basic(client.client_id, secret)
        ),
        ctx,
    )
    assert introspection.body == {"active": False}
    event = store.audit.events[-1]
    assert (event.event, event.grant_id) == ("code.replay_detected", stored.grant_id)
    assert event.detail["grant_revoked"] is True
    assert event.detail["revoked_tokens"] == 2


async def test_replay_after_expiry_still_revokes(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, clock: Clock
) -> None:
    client = await client_factory()
    code, verifier, stored = await put_code(ctx, client)
    first = await redeem(ctx, client, code_params(code, verifier))
    clock.advance(120)
    expect(await redeem(ctx, client, code_params(code, verifier)), "invalid_grant")
    assert await store.tokens.is_revoked("any", stored.grant_id)
    refresh = {"grant_type": "refresh_token", "refresh_token": first.body["refresh_token"]}
    expect(await redeem(ctx, client, refresh), "invalid_grant")


async def test_client_without_code_grant_is_unauthorized_client(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(
        client_factory, grant_types=frozenset({"client_credentials"})
    )
    code, verifier, _ = await put_code(ctx, client)
    response = await refused(ctx, store, client, code_params(code, verifier), secret)
    expect(response, "unauthorized_client")


# --- redirect_uri (RFC 6749 §4.1.3) -----------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://app.example/callback/",
        "https://app.example/callback?x=1",
        "https://APP.example/callback",
        "https://evil.example/callback",
        "http://app.example/callback",
    ],
)
async def test_wrong_redirect_uri_is_invalid_grant(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, redirect_uri: str
) -> None:
    client = await client_factory()
    code, verifier, _ = await put_code(ctx, client)
    params = code_params(code, verifier, redirect_uri=redirect_uri)
    expect(await refused(ctx, store, client, params), "invalid_grant")


async def test_redirect_uri_may_be_left_out_when_it_is_the_only_one(
    ctx: Context, client_factory: ClientFactory
) -> None:
    client = await client_factory()
    code, verifier, _ = await put_code(ctx, client)
    params = code_params(code, verifier)
    del params["redirect_uri"]
    assert (await redeem(ctx, client, params)).status == 200


async def test_redirect_uri_is_required_when_several_are_registered(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client = await client_factory(
        redirect_uris=(REDIRECT_URI, "https://app.example/other"), grant_types=ALL_GRANTS
    )
    code, verifier, _ = await put_code(ctx, client)
    params = code_params(code, verifier)
    del params["redirect_uri"]
    expect(await refused(ctx, store, client, params), "invalid_request")


async def test_loopback_redirect_uri_must_repeat_the_port_used(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client = await client_factory(redirect_uris=("http://127.0.0.1/cb",))
    code, verifier, _ = await put_code(ctx, client, redirect_uri="http://127.0.0.1:51234/cb")
    params = code_params(code, verifier, redirect_uri="http://127.0.0.1:51235/cb")
    expect(await refused(ctx, store, client, params), "invalid_grant")
    del params["redirect_uri"]
    expect(await refused(ctx, store, client, params), "invalid_request")
    params["redirect_uri"] = "http://127.0.0.1:51234/cb"
    assert (await redeem(ctx, client, params)).status == 200


# --- resource indicators (RFC 8707 §2.2) ------------------------------------------------------


async def test_resource_narrows_the_audience(
    ctx: Context,
    client_factory: ClientFactory,
    api_factory: ApiFactory,
    es256_key: JWK,
    clock: Clock,
) -> None:
    await api_factory(API_A, API_B)
    client = await client_factory()
    code, verifier, _ = await put_code(ctx, client, resources=(API_A, API_B))
    response = await redeem(ctx, client, code_params(code, verifier, resource=API_A))
    claims = jwt.decode(
        response.body["access_token"],
        es256_key,
        algorithms=["ES256"],
        audience=API_A,
        now=clock.now,
    )
    assert claims["aud"] == API_A


async def test_all_granted_resources_when_none_asked(
    ctx: Context,
    client_factory: ClientFactory,
    api_factory: ApiFactory,
    es256_key: JWK,
    clock: Clock,
) -> None:
    await api_factory(API_A, API_B)
    client = await client_factory()
    code, verifier, _ = await put_code(ctx, client, resources=(API_A, API_B))
    response = await redeem(ctx, client, code_params(code, verifier))
    claims = jwt.decode(
        response.body["access_token"],
        es256_key,
        algorithms=["ES256"],
        audience=API_B,
        now=clock.now,
    )
    assert claims["aud"] == [API_A, API_B]


@pytest.mark.parametrize(
    "resource",
    [
        "https://c.example/api",
        "not a uri",
        "https://a.example/api#frag",
        [API_A, "https://c.example"],
    ],
)
async def test_resource_outside_the_grant_is_invalid_target(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, resource: Any
) -> None:
    client = await client_factory()
    code, verifier, _ = await put_code(ctx, client, resources=(API_A,))
    params = code_params(code, verifier, resource=resource)
    expect(await refused(ctx, store, client, params), "invalid_target")
