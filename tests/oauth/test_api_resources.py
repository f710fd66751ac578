"""Registered APIs as RFC 8707 resources: an unknown resource is `invalid_target`, a token
for an API carries that API as its audience and only that API's scopes, and a client gets an
API's scope only when it was registered with it."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from core_context import ApiFactory, ClientFactory, Clock
from token_requests import (
    ALL_GRANTS,
    basic,
    code_params,
    confidential_client,
    put_code,
    snapshot,
    token_request,
)

from ostiary.jose import jwt
from ostiary.jose.jwk import JWK
from ostiary.oauth.authorize import AuthorizationRedirectError, parse_authorization_request
from ostiary.oauth.context import Context
from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.pkce import s256_challenge
from ostiary.oauth.token_endpoint import TokenResponse, handle_token_request
from ostiary.oauth.token_hash import hash_token

pytestmark = pytest.mark.anyio

NOTES = "https://notes.example"
BILLING = "https://billing.example"
NOTES_SCOPES = frozenset({"notes:read", "notes:write"})


async def client_credentials(
    ctx: Context, client_id: str, secret: str, **params: Any
) -> TokenResponse:
    request = token_request(
        {"grant_type": "client_credentials", **params}, authorization=basic(client_id, secret)
    )
    return await handle_token_request(request, ctx)


def claims_of(response: TokenResponse, key: JWK, clock: Clock, audience: str) -> dict[str, Any]:
    assert response.status == 200, response.body
    return jwt.decode(
        response.body["access_token"],
        key,
        algorithms=["ES256"],
        audience=audience,
        typ="at+jwt",
        now=clock.now,
    )


@pytest.fixture
async def notes(api_factory: ApiFactory) -> None:
    await api_factory(NOTES, scopes=NOTES_SCOPES)
    await api_factory(BILLING, scopes={"invoices:read"})


async def test_token_for_a_registered_api_has_its_audience_and_only_its_scopes(
    ctx: Context, client_factory: ClientFactory, notes: None, es256_key: JWK, clock: Clock
) -> None:
    client, secret = await confidential_client(
        client_factory, scopes=frozenset({"notes:read", "invoices:read", "profile"})
    )
    response = await client_credentials(ctx, client.client_id, secret, resource=NOTES)
    claims = claims_of(response, es256_key, clock, NOTES)
    assert claims["aud"] == NOTES
    assert claims["scope"] == response.body["scope"] == "notes:read"


async def test_token_for_two_apis_carries_the_scopes_of_both(
    ctx: Context, client_factory: ClientFactory, notes: None, es256_key: JWK, clock: Clock
) -> None:
    client, secret = await confidential_client(
        client_factory, scopes=frozenset({"notes:read", "invoices:read", "profile"})
    )
    response = await client_credentials(ctx, client.client_id, secret, resource=[NOTES, BILLING])
    claims = claims_of(response, es256_key, clock, BILLING)
    assert claims["aud"] == [NOTES, BILLING]
    assert claims["scope"] == "invoices:read notes:read"


async def test_unregistered_client_scope_of_an_api_is_not_given(
    ctx: Context, client_factory: ClientFactory, notes: None, es256_key: JWK, clock: Clock
) -> None:
    """A client registered with notes:read only never gets notes:write, even when asking."""
    client, secret = await confidential_client(client_factory, scopes=frozenset({"notes:read"}))
    asked = await client_credentials(
        ctx, client.client_id, secret, resource=NOTES, scope="notes:read notes:write"
    )
    assert claims_of(asked, es256_key, clock, NOTES)["scope"] == "notes:read"
    only_write = await client_credentials(
        ctx, client.client_id, secret, resource=NOTES, scope="notes:write"
    )
    assert (only_write.status, only_write.body["error"]) == (400, "invalid_scope")


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param("https://unknown.example", id="unknown"),
        pytest.param(NOTES + "/", id="trailing-slash"),
        pytest.param("HTTPS://notes.example", id="other-case"),
        pytest.param([NOTES, "https://unknown.example"], id="one-of-two-unknown"),
    ],
)
async def test_unknown_resource_is_invalid_target(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    notes: None,
    resource: str | list[str],
) -> None:
    client, secret = await confidential_client(client_factory, scopes=NOTES_SCOPES)
    before = snapshot(store)
    response = await client_credentials(ctx, client.client_id, secret, resource=resource)
    assert (response.status, response.body["error"]) == (400, "invalid_target")
    assert "unknown.example" not in response.body.get("error_description", "")
    assert snapshot(store) == before


async def test_client_without_any_scope_of_the_api_is_invalid_scope(
    ctx: Context, client_factory: ClientFactory, notes: None
) -> None:
    client, secret = await confidential_client(client_factory, scopes=frozenset({"read"}))
    response = await client_credentials(ctx, client.client_id, secret, resource=NOTES)
    assert (response.status, response.body["error"]) == (400, "invalid_scope")


async def test_without_resource_the_token_is_as_before(
    ctx: Context, client_factory: ClientFactory, notes: None, es256_key: JWK, clock: Clock
) -> None:
    client, secret = await confidential_client(client_factory, scopes=frozenset({"notes:read"}))
    response = await client_credentials(ctx, client.client_id, secret)
    claims = claims_of(response, es256_key, clock, ctx.config.audience)
    assert claims["scope"] == "notes:read"


async def test_code_for_a_deleted_api_is_invalid_target(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, notes: None
) -> None:
    client = await client_factory(scopes=frozenset({"openid", "notes:read"}))
    code, verifier, _ = await put_code(
        ctx, client, scope=frozenset({"openid", "notes:read"}), resources=(NOTES,)
    )
    assert await store.apis.delete(NOTES)
    response = await handle_token_request(
        token_request(code_params(code, verifier, client_id=client.client_id)), ctx
    )
    assert (response.status, response.body["error"]) == (400, "invalid_target")
    # refused before the code was consumed: it is not marked used
    assert (await store.codes.consume(hash_token(code), now=ctx.now())).replayed is False


async def test_code_keeps_openid_but_the_access_token_only_the_api_scopes(
    ctx: Context, client_factory: ClientFactory, notes: None, es256_key: JWK, clock: Clock
) -> None:
    client = await client_factory(
        scopes=frozenset({"openid", "notes:read"}), grant_types=ALL_GRANTS - {"client_credentials"}
    )
    code, verifier, _ = await put_code(
        ctx, client, scope=frozenset({"openid", "notes:read"}), resources=(NOTES,)
    )
    response = await handle_token_request(
        token_request(code_params(code, verifier, client_id=client.client_id)), ctx
    )
    assert claims_of(response, es256_key, clock, NOTES)["scope"] == "notes:read"
    refreshed = await handle_token_request(
        token_request(
            {
                "grant_type": "refresh_token",
                "refresh_token": response.body["refresh_token"],
                "client_id": client.client_id,
            }
        ),
        ctx,
    )
    assert claims_of(refreshed, es256_key, clock, NOTES)["scope"] == "notes:read"


def authorization_query(**extra: str | list[str]) -> dict[str, list[str]]:
    params: dict[str, str | list[str]] = {
        "client_id": "app",
        "redirect_uri": "https://app.example/callback",
        "response_type": "code",
        "state": "xyz",
        "code_challenge": s256_challenge("v" * 43),
        "code_challenge_method": "S256",
        **extra,
    }
    return {k: v if isinstance(v, list) else [v] for k, v in params.items()}


async def test_authorization_request_for_an_unknown_resource_is_invalid_target(
    ctx: Context, client_factory: ClientFactory, notes: None
) -> None:
    await client_factory(client_id="app", scopes=frozenset({"openid", "notes:read"}))
    with pytest.raises(AuthorizationRedirectError) as caught:
        await parse_authorization_request(
            authorization_query(resource="https://unknown.example"), ctx
        )
    response = parse_qs(urlsplit(caught.value.location).query)
    assert response["error"] == ["invalid_target"]
    request = await parse_authorization_request(authorization_query(resource=NOTES), ctx)
    assert request.resources == (NOTES,)
    assert request.scope == {"openid", "notes:read"}


async def test_authorization_request_with_no_scope_of_the_api_is_invalid_scope(
    ctx: Context, client_factory: ClientFactory, notes: None
) -> None:
    await client_factory(client_id="app", scopes=frozenset({"openid", "notes:read"}))
    with pytest.raises(AuthorizationRedirectError) as caught:
        await parse_authorization_request(
            authorization_query(resource=BILLING, scope="openid notes:read"), ctx
        )
    assert caught.value.error.error == "invalid_scope"
