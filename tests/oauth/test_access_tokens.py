"""RFC 9068 JWT access tokens and opaque reference tokens: claims, header, recording, reading."""

from __future__ import annotations

from typing import Any

import pytest
from core_context import ISSUER, ClientFactory, Clock, Pbkdf2Hasher, StaticKeyRing

from ostiary.jose import jwt
from ostiary.jose.jwk import JWK
from ostiary.oauth.access_tokens import (
    ACCESS_TOKEN_TYPE,
    AccessToken,
    mint_access_token,
    verify_access_token_jwt,
)
from ostiary.oauth.config import ServerConfig
from ostiary.oauth.context import Context
from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.token_hash import hash_token

pytestmark = pytest.mark.anyio

READ = frozenset({"read"})
API = "https://api.example"


async def issue_access_token(ctx: Context, **fields: Any) -> AccessToken:
    """Mint a token and store its record, as a grant does."""
    token = await mint_access_token(ctx, **fields)
    if token.record is not None:
        await ctx.store.tokens.add_access(token.record)
    return token


async def test_jwt_has_the_rfc9068_header_and_claims(
    ctx: Context, client_factory: ClientFactory, es256_key: JWK, clock: Clock
) -> None:
    client = await client_factory()
    token = await issue_access_token(
        ctx, client=client, subject="user-1", scope=READ, audience=[API], grant_id="g1"
    )
    header = jwt.unverified_header(token.value)
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": es256_key.kid}
    claims = jwt.decode(
        token.value, es256_key, algorithms=["ES256"], audience=API, typ="at+jwt", now=clock.now
    )
    assert claims == {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": API,
        "exp": clock.now + 600,
        "iat": clock.now,
        "jti": token.token_id,
        "client_id": client.client_id,
        "scope": "read",
    }
    assert token.expires_in == 600


async def test_several_resources_make_an_audience_array(
    ctx: Context, client_factory: ClientFactory, es256_key: JWK, clock: Clock
) -> None:
    client = await client_factory()
    token = await issue_access_token(
        ctx, client=client, subject="u", scope=READ, audience=[API, ISSUER], grant_id=None
    )
    claims = jwt.decode(token.value, es256_key, algorithms=["ES256"], audience=API, now=clock.now)
    assert claims["aud"] == [API, ISSUER]


async def test_empty_scope_leaves_the_claim_out_and_auth_time_is_kept(
    ctx: Context, client_factory: ClientFactory, es256_key: JWK, clock: Clock
) -> None:
    client = await client_factory()
    token = await issue_access_token(
        ctx,
        client=client,
        subject="u",
        scope=frozenset(),
        audience=[API],
        grant_id="g",
        auth_time=clock.now - 30,
    )
    claims = jwt.decode(token.value, es256_key, algorithms=["ES256"], audience=API, now=clock.now)
    assert "scope" not in claims
    assert claims["auth_time"] == clock.now - 30


async def test_every_token_has_its_own_jti(ctx: Context, client_factory: ClientFactory) -> None:
    client = await client_factory()
    ids = {
        (
            await issue_access_token(
                ctx, client=client, subject="u", scope=READ, audience=[API], grant_id=None
            )
        ).token_id
        for _ in range(50)
    }
    assert len(ids) == 50


async def test_grant_tokens_are_recorded_client_credentials_tokens_are_not(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client = await client_factory()
    with_grant = await issue_access_token(
        ctx, client=client, subject="u", scope=READ, audience=[API], grant_id="g1"
    )
    without = await issue_access_token(
        ctx, client=client, subject=client.client_id, scope=READ, audience=[API], grant_id=None
    )
    recorded = await store.tokens.find_access(with_grant.token_id)
    assert recorded is not None
    assert (recorded.grant_id, recorded.format, recorded.subject) == ("g1", "jwt", "u")
    assert await store.tokens.find_access(without.token_id) is None


async def test_opaque_token_is_random_and_stored_only_by_hash(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, clock: Clock
) -> None:
    client = await client_factory(token_format="opaque")
    token = await issue_access_token(
        ctx, client=client, subject="u", scope=READ, audience=[API], grant_id=None
    )
    assert token.format == "opaque"
    assert "." not in token.value
    assert len(token.value) == 43
    assert token.token_id == hash_token(token.value) != token.value
    recorded = await store.tokens.find_access(hash_token(token.value))
    assert recorded is not None
    assert recorded.format == "opaque"
    assert recorded.expires_at == clock.now + 600
    assert await store.tokens.find_access(token.value) is None


async def test_rs256_server_key_signs_rs256(
    store: MemoryStore, client_factory: ClientFactory, clock: Clock
) -> None:
    key = JWK.generate("RSA", size=2048, alg="RS256", kid="r1")
    ctx = Context(
        config=ServerConfig(issuer=ISSUER, signing_alg="RS256"),
        store=store,
        keys=StaticKeyRing(key),
        passwords=Pbkdf2Hasher(),
        clock=clock,
    )
    client = await client_factory()
    token = await issue_access_token(
        ctx, client=client, subject="u", scope=READ, audience=[API], grant_id=None
    )
    assert jwt.unverified_header(token.value)["alg"] == "RS256"
    assert await verify_access_token_jwt(token.value, ctx) is not None


async def test_own_token_reads_back(ctx: Context, client_factory: ClientFactory) -> None:
    client = await client_factory()
    token = await issue_access_token(
        ctx, client=client, subject="u", scope=READ, audience=[API, ISSUER], grant_id=None
    )
    claims = await verify_access_token_jwt(token.value, ctx)
    assert claims is not None
    assert claims["jti"] == token.token_id


def _claims(now: int, **changes: Any) -> dict[str, Any]:
    claims = {
        "iss": ISSUER,
        "sub": "u",
        "aud": API,
        "exp": now + 60,
        "iat": now,
        "jti": "j",
        "client_id": "app",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "typ", "own_key"),
    [
        ({}, "JWT", True),  # an ID token or any other JWT of ours is not an access token
        ({"iss": "https://other.example"}, ACCESS_TOKEN_TYPE, True),
        ({"exp": 0}, ACCESS_TOKEN_TYPE, True),  # exp relative to now: now is expired
        ({"client_id": None}, ACCESS_TOKEN_TYPE, True),
        ({"client_id": 7}, ACCESS_TOKEN_TYPE, True),
        ({"jti": None}, ACCESS_TOKEN_TYPE, True),
        ({"aud": None}, ACCESS_TOKEN_TYPE, True),
        ({"aud": []}, ACCESS_TOKEN_TYPE, True),
        ({"aud": [1]}, ACCESS_TOKEN_TYPE, True),
        ({}, ACCESS_TOKEN_TYPE, False),  # signed by someone else's key
    ],
    ids=[
        "typ-jwt",
        "other-issuer",
        "expired",
        "no-client-id",
        "client-id-not-string",
        "no-jti",
        "no-aud",
        "empty-aud",
        "aud-not-strings",
        "foreign-key",
    ],
)
async def test_tokens_that_are_not_our_live_access_tokens_read_as_none(  # noqa: PLR0917
    ctx: Context,
    es256_key: JWK,
    clock: Clock,
    changes: dict[str, Any],
    typ: str,
    own_key: bool,
) -> None:
    claims = _claims(clock.now, **changes)
    if "exp" in changes:
        claims["exp"] = clock.now + changes["exp"]
    key = es256_key if own_key else JWK.generate("EC", crv="P-256", alg="ES256", kid="test-es256")
    token = jwt.encode(claims, key, alg="ES256", headers={"typ": typ})
    assert await verify_access_token_jwt(token, ctx) is None


@pytest.mark.parametrize("token", ["", "a.b.c", "x" * 20000, "e30.e30.", "....."])
async def test_garbage_reads_as_none(ctx: Context, token: str) -> None:
    assert await verify_access_token_jwt(token, ctx) is None
