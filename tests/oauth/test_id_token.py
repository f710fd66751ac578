"""ID tokens at the token endpoint (OpenID Connect Core §3.1.3, §12.2) and ID token hints."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from typing import Any

import pytest
from core_context import ISSUER, START, ClientFactory, Clock, UserFactory
from token_requests import code_params, put_code, token_request

from ostiary.jose import jwt
from ostiary.oauth.context import Context
from ostiary.oauth.id_token import issue_id_token, read_id_token_hint, token_hash
from ostiary.oauth.models import Client, ClientOidc
from ostiary.oauth.token_endpoint import handle_token_request

pytestmark = pytest.mark.anyio
OPENID = frozenset({"openid", "read"})


async def redeem(
    ctx: Context, client: Client, *, scope: frozenset[str] = OPENID, nonce: str | None = None
) -> dict[str, Any]:
    code, verifier, stored = await put_code(ctx, client, user_id="user-1", scope=scope)
    await ctx.store.codes.put(dataclasses.replace(stored, nonce=nonce))
    response = await handle_token_request(
        token_request(code_params(code, verifier, client_id=client.client_id)), ctx
    )
    assert response.status == 200, response.body
    return response.body


async def verified(ctx: Context, token: str, client: Client) -> dict[str, Any]:
    return jwt.decode(
        token,
        await ctx.keys.published(),
        algorithms=[client.oidc.id_token_signed_response_alg],
        audience=client.client_id,
        issuer=ISSUER,
        now=ctx.now(),
    )


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
async def test_code_with_openid_scope_gets_an_id_token_in_the_registered_alg(
    ctx: Context, client_factory: ClientFactory, alg: str
) -> None:
    client = await client_factory(scopes=OPENID, oidc=ClientOidc(id_token_signed_response_alg=alg))
    body = await redeem(ctx, client, nonce="n-0S6_WzA2Mj")
    assert jwt.unverified_header(body["id_token"])["alg"] == alg
    claims = await verified(ctx, body["id_token"], client)
    assert claims["sub"] == "user-1"
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["auth_time"] == START - 5
    assert claims["iat"] == START and claims["exp"] == START + ctx.config.id_token_ttl
    assert claims["at_hash"] == token_hash(body["access_token"], alg)
    assert "azp" not in claims  # one audience: azp is not needed


def test_at_hash_is_the_left_half_of_the_hash_for_the_alg() -> None:
    # OpenID Connect Core §3.1.3.6 (RS256: SHA-256); Ed25519 takes SHA-512 (Core errata 2)
    value = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
    sha256 = hashlib.sha256(value.encode()).digest()[:16]
    sha512 = hashlib.sha512(value.encode()).digest()[:32]
    assert token_hash(value, "RS256") == base64.urlsafe_b64encode(sha256).rstrip(b"=").decode()
    assert token_hash(value, "EdDSA") == base64.urlsafe_b64encode(sha512).rstrip(b"=").decode()


async def test_no_nonce_sent_means_none_in_the_id_token(
    ctx: Context, client_factory: ClientFactory
) -> None:
    client = await client_factory(scopes=OPENID)
    claims = await verified(ctx, (await redeem(ctx, client))["id_token"], client)
    assert "nonce" not in claims


async def test_without_openid_scope_there_is_no_id_token(
    ctx: Context, client_factory: ClientFactory
) -> None:
    client = await client_factory(scopes=OPENID)
    body = await redeem(ctx, client, scope=frozenset({"read"}))
    assert "id_token" not in body


async def test_refresh_issues_a_new_id_token_for_the_same_sign_in(
    ctx: Context, client_factory: ClientFactory, clock: Clock
) -> None:
    client = await client_factory(scopes=OPENID)
    first = await redeem(ctx, client, nonce="abc")
    original = await verified(ctx, first["id_token"], client)
    clock.advance(120)
    response = await handle_token_request(
        token_request(
            {
                "grant_type": "refresh_token",
                "refresh_token": first["refresh_token"],
                "client_id": client.client_id,
            }
        ),
        ctx,
    )
    assert response.status == 200, response.body
    renewed = await verified(ctx, response.body["id_token"], client)
    # OpenID Connect Core §12.2
    for name in ("iss", "sub", "aud", "auth_time"):
        assert renewed[name] == original[name], name
    assert renewed["iat"] == original["iat"] + 120
    assert "nonce" not in renewed
    assert renewed["at_hash"] == token_hash(response.body["access_token"], "RS256")


async def test_refresh_narrowed_without_openid_gets_no_id_token(
    ctx: Context, client_factory: ClientFactory
) -> None:
    client = await client_factory(scopes=OPENID)
    first = await redeem(ctx, client)
    response = await handle_token_request(
        token_request(
            {
                "grant_type": "refresh_token",
                "refresh_token": first["refresh_token"],
                "client_id": client.client_id,
                "scope": "read",
            }
        ),
        ctx,
    )
    assert response.status == 200 and "id_token" not in response.body


async def test_pairwise_subjects_differ_per_sector_and_stay_put_within_one(
    client_factory: ClientFactory, user_factory: UserFactory, ctx: Context
) -> None:
    ctx = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, subject_salt=b"s" * 32))
    pairwise = ClientOidc(subject_type="pairwise")
    a1 = await client_factory(redirect_uris=("https://a.example/cb",), oidc=pairwise)
    a2 = await client_factory(redirect_uris=("https://a.example/other",), oidc=pairwise)
    b = await client_factory(redirect_uris=("https://b.example/cb",), oidc=pairwise)
    public = await client_factory(redirect_uris=("https://b.example/cb",))
    subs = {}
    for client in (a1, a2, b, public):
        token = await issue_id_token(ctx, client=client, user_id="user-1", auth_time=START)
        subs[client.client_id] = (await verified(ctx, token, client))["sub"]
    assert subs[a1.client_id] == subs[a2.client_id]
    assert subs[a1.client_id] != subs[b.client_id]
    assert subs[public.client_id] == "user-1"
    assert "user-1" not in {subs[a1.client_id], subs[b.client_id]}


async def test_pairwise_without_a_salt_is_refused_not_made_public(
    ctx: Context, client_factory: ClientFactory
) -> None:
    client = await client_factory(oidc=ClientOidc(subject_type="pairwise"))
    with pytest.raises(ValueError, match="subject_salt"):
        await issue_id_token(ctx, client=client, user_id="user-1", auth_time=START)


async def test_an_expired_id_token_still_reads_as_a_hint(
    ctx: Context, client_factory: ClientFactory, clock: Clock
) -> None:
    client = await client_factory(scopes=OPENID)
    token = await issue_id_token(ctx, client=client, user_id="user-1", auth_time=START)
    clock.advance(ctx.config.id_token_ttl + 3600)
    hint = await read_id_token_hint(token, ctx)
    assert hint is not None and hint["sub"] == "user-1" and hint["aud"] == client.client_id


async def test_tampered_or_foreign_hints_read_as_nothing(
    ctx: Context, client_factory: ClientFactory
) -> None:
    client = await client_factory(scopes=OPENID)
    token = await issue_id_token(ctx, client=client, user_id="user-1", auth_time=START)
    header, payload, signature = token.split(".")
    other_sub = _b64json({**_decode(payload), "sub": "user-2"})
    assert await read_id_token_hint(f"{header}.{other_sub}.{signature}", ctx) is None
    assert await read_id_token_hint(f"{header}.{payload}.{signature[:-4]}AAAA", ctx) is None
    assert await read_id_token_hint("not a token", ctx) is None
    # an access token is signed by the same server, but is not an ID token
    body = await redeem(ctx, client)
    assert await read_id_token_hint(body["access_token"], ctx) is None


def _decode(segment: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def _b64json(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
