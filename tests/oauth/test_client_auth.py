"""Client authentication: one method per request, the registered one, and nothing else.

Each refusal is checked for its exact RFC 6749 §5.2 code and status, and for leaving the store
as it was (a refused private_key_jwt assertion must not burn its jti, for one).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from core_context import ISSUER, ClientFactory
from token_requests import (
    ALL_GRANTS,
    basic,
    client_jwks,
    confidential_client,
    snapshot,
    token_request,
)

from ostiary.jose import jwt
from ostiary.jose.jwk import JWK
from ostiary.oauth.client_auth import (
    ASSERTION_TYPE,
    authenticate_client,
    parse_basic_authorization,
)
from ostiary.oauth.client_secrets import hash_client_secret
from ostiary.oauth.context import Context
from ostiary.oauth.errors import InvalidClient, InvalidRequest
from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.models import Client
from ostiary.oauth.token_endpoint import handle_token_request
from ostiary.oauth.token_request import Form, TokenResponse, parse_form

pytestmark = pytest.mark.anyio

TOKEN_URL = ISSUER + "/token"
CC = {"grant_type": "client_credentials"}


@pytest.fixture(scope="module")
def client_key() -> JWK:
    return JWK.generate("EC", crv="P-256", alg="ES256", kid="client-1")


@pytest.fixture(scope="module")
def rsa_client_key() -> JWK:
    return JWK.generate("RSA", size=2048, alg="PS256", kid="client-rsa")


async def jwt_client(client_factory: ClientFactory, *keys: JWK) -> Client:
    return await client_factory(
        auth_method="private_key_jwt", jwks=client_jwks(*keys), grant_types=ALL_GRANTS
    )


def assertion(
    key: JWK,
    client_id: str,
    *,
    now: int,
    alg: str = "ES256",
    headers: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    body: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 60,
        "iat": now,
        "jti": f"jti-{now}-{client_id}",
    }
    body.update(claims)
    for name in drop:
        del body[name]
    return jwt.encode(body, key, alg=alg, headers=headers)


def assertion_form(token: str, **extra: str) -> dict[str, str]:
    return {
        **CC,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": token,
        **extra,
    }


async def refused(
    ctx: Context, store: MemoryStore, params: dict[str, Any], **kw: Any
) -> TokenResponse:
    before = snapshot(store)
    response = await handle_token_request(token_request(params, **kw), ctx)
    assert snapshot(store) == before
    assert response.headers["Cache-Control"] == "no-store"
    return response


def expect(response: TokenResponse, error: str, status: int) -> None:
    assert (response.status, response.body["error"]) == (status, error)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic ")


# --- client_secret_basic --------------------------------------------------------------------


async def test_basic_authenticates(ctx: Context, client_factory: ClientFactory) -> None:
    client, secret = await confidential_client(client_factory)
    response = await handle_token_request(
        token_request(CC, authorization=basic(client.client_id, secret)), ctx
    )
    assert response.status == 200


async def test_basic_credentials_are_form_urlencoded_first(
    ctx: Context, client_factory: ClientFactory
) -> None:
    # RFC 6749 §2.3.1: a ':' in the id or secret travels as %3A, '+' as %2B, ' ' as '+'.
    client_id, secret = "app:1 ü+x", "s:e c+r%t"
    await client_factory(
        client_id=client_id,
        auth_method="client_secret_basic",
        secret_hash=hash_client_secret(secret),
        grant_types=ALL_GRANTS,
    )
    header = basic(client_id, secret)
    assert parse_basic_authorization(header) == (client_id, secret)
    authed = await authenticate_client(Form(params={}), header, ctx, endpoint=TOKEN_URL)
    assert authed.client_id == client_id
    response = await handle_token_request(token_request(CC, authorization=header), ctx)
    assert response.status == 200


async def test_basic_with_wrong_secret_is_invalid_client(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    response = await refused(ctx, store, CC, authorization=basic(client.client_id, secret + "x"))
    expect(response, "invalid_client", 401)


async def test_basic_for_unknown_client_is_invalid_client(ctx: Context, store: MemoryStore) -> None:
    response = await refused(ctx, store, CC, authorization=basic("nobody", "secret"))
    expect(response, "invalid_client", 401)


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"app-1:").decode(),
        "Basic " + base64.b64encode(b":secret").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Basic " + base64.b64encode(b"app%ZZ:secret").decode() + "=",
        "Basic " + base64.b64encode(b"app-1:%00").decode(),
        "Basic " + "A" * 5000,
        "Bearer abc.def.ghi",
        "",
    ],
    ids=[
        "no-credentials",
        "not-base64",
        "no-colon",
        "empty-secret",
        "empty-id",
        "not-utf8",
        "bad-padding",
        "nul-in-secret",
        "oversized",
        "bearer-scheme",
        "empty-header",
    ],
)
async def test_malformed_authorization_header_is_invalid_client(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, header: str
) -> None:
    await confidential_client(client_factory)
    expect(await refused(ctx, store, CC, authorization=header), "invalid_client", 401)


async def test_basic_and_post_together_is_invalid_request(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    params = {**CC, "client_id": client.client_id, "client_secret": secret}
    response = await refused(ctx, store, params, authorization=basic(client.client_id, secret))
    expect(response, "invalid_request", 400)


async def test_basic_and_assertion_together_is_invalid_request(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, client_key: JWK, clock: Any
) -> None:
    client = await jwt_client(client_factory, client_key)
    params = assertion_form(assertion(client_key, client.client_id, now=clock.now))
    response = await refused(ctx, store, params, authorization=basic(client.client_id, "x"))
    expect(response, "invalid_request", 400)


async def test_post_and_assertion_together_is_invalid_request(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, client_key: JWK, clock: Any
) -> None:
    client = await jwt_client(client_factory, client_key)
    params = assertion_form(
        assertion(client_key, client.client_id, now=clock.now), client_secret="x"
    )
    expect(await refused(ctx, store, params), "invalid_request", 400)


async def test_form_client_id_differing_from_basic_is_invalid_request(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    params = {**CC, "client_id": "someone-else"}
    response = await refused(ctx, store, params, authorization=basic(client.client_id, secret))
    expect(response, "invalid_request", 400)


async def test_form_client_id_equal_to_basic_is_accepted(
    ctx: Context, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    params = {**CC, "client_id": client.client_id}
    response = await handle_token_request(
        token_request(params, authorization=basic(client.client_id, secret)), ctx
    )
    assert response.status == 200


# --- client_secret_post, none, and the registered method ---------------------------------------


async def test_post_authenticates_a_post_client(
    ctx: Context, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(client_factory, auth_method="client_secret_post")
    params = {**CC, "client_id": client.client_id, "client_secret": secret}
    assert (await handle_token_request(token_request(params), ctx)).status == 200


async def test_post_with_wrong_secret_is_invalid_client(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client, _ = await confidential_client(client_factory, auth_method="client_secret_post")
    params = {**CC, "client_id": client.client_id, "client_secret": "guess"}
    expect(await refused(ctx, store, params), "invalid_client", 401)


async def test_method_other_than_registered_is_invalid_client(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    basic_client, secret = await confidential_client(client_factory)
    params = {**CC, "client_id": basic_client.client_id, "client_secret": secret}
    expect(await refused(ctx, store, params), "invalid_client", 401)
    post_client, post_secret = await confidential_client(
        client_factory, auth_method="client_secret_post"
    )
    response = await refused(
        ctx, store, CC, authorization=basic(post_client.client_id, post_secret)
    )
    expect(response, "invalid_client", 401)


async def test_confidential_client_naming_itself_without_secret_is_invalid_client(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client, _ = await confidential_client(client_factory)
    params = {**CC, "client_id": client.client_id}
    expect(await refused(ctx, store, params), "invalid_client", 401)


async def test_no_client_authentication_is_invalid_client(ctx: Context, store: MemoryStore) -> None:
    expect(await refused(ctx, store, CC), "invalid_client", 401)


async def test_public_client_authenticates_with_client_id(
    ctx: Context, client_factory: ClientFactory
) -> None:
    client = await client_factory()
    form = Form(params={"client_id": client.client_id})
    assert await authenticate_client(form, None, ctx, endpoint=TOKEN_URL) == client


async def test_public_client_sending_a_secret_is_invalid_client(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client = await client_factory()
    params = {**CC, "client_id": client.client_id, "client_secret": "anything"}
    expect(await refused(ctx, store, params), "invalid_client", 401)


async def test_unknown_public_client_id_is_invalid_client(ctx: Context, store: MemoryStore) -> None:
    expect(await refused(ctx, store, {**CC, "client_id": "ghost"}), "invalid_client", 401)


async def test_unknown_client_error_reads_like_wrong_secret(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory
) -> None:
    client, _ = await confidential_client(client_factory)
    wrong = await refused(ctx, store, CC, authorization=basic(client.client_id, "nope"))
    unknown = await refused(ctx, store, CC, authorization=basic("ghost", "nope"))
    assert wrong.body == unknown.body


# --- private_key_jwt (RFC 7523 §3) -----------------------------------------------------------


@pytest.mark.parametrize("aud", [TOKEN_URL, ISSUER, [TOKEN_URL, "https://other.example"]])
async def test_assertion_authenticates(
    ctx: Context, client_factory: ClientFactory, client_key: JWK, clock: Any, aud: Any
) -> None:
    client = await jwt_client(client_factory, client_key)
    token = assertion(client_key, client.client_id, now=clock.now, aud=aud)
    response = await handle_token_request(token_request(assertion_form(token)), ctx)
    assert response.status == 200, response.body


async def test_rsa_pss_assertion_authenticates_with_client_id_in_form(
    ctx: Context, client_factory: ClientFactory, client_key: JWK, rsa_client_key: JWK, clock: Any
) -> None:
    client = await jwt_client(client_factory, client_key, rsa_client_key)
    token = assertion(rsa_client_key, client.client_id, now=clock.now, alg="PS256")
    params = assertion_form(token, client_id=client.client_id)
    assert (await handle_token_request(token_request(params), ctx)).status == 200


async def test_reused_assertion_jti_is_invalid_client(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, client_key: JWK, clock: Any
) -> None:
    client = await jwt_client(client_factory, client_key)
    token = assertion(client_key, client.client_id, now=clock.now)
    first = await handle_token_request(token_request(assertion_form(token)), ctx)
    assert first.status == 200
    clock.advance(5)
    expect(await refused(ctx, store, assertion_form(token)), "invalid_client", 401)


async def test_jti_is_single_use_even_in_a_fresh_assertion(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, client_key: JWK, clock: Any
) -> None:
    client = await jwt_client(client_factory, client_key)
    first = assertion(client_key, client.client_id, now=clock.now, jti="same")
    assert (await handle_token_request(token_request(assertion_form(first)), ctx)).status == 200
    clock.advance(1)
    again = assertion(client_key, client.client_id, now=clock.now, jti="same")
    expect(await refused(ctx, store, assertion_form(again)), "invalid_client", 401)


async def test_distant_exp_is_bounded_by_iat(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, client_key: JWK, clock: Any
) -> None:
    """Authlib's default assertion lives an hour; it counts as usable for max_age after iat."""
    client = await jwt_client(client_factory, client_key)
    token = assertion(client_key, client.client_id, now=clock.now, exp=clock.now + 3600)
    assert (await handle_token_request(token_request(assertion_form(token)), ctx)).status == 200
    clock.advance(299)
    expect(await refused(ctx, store, assertion_form(token)), "invalid_client", 401)


def _unsigned(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _bad_assertions(key: JWK, other: JWK, client_id: str, now: int) -> dict[str, str]:
    good_claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 60,
        "jti": "x1",
    }
    hs_key = JWK.from_secret(b"k" * 32)
    return {
        "alg-none": _unsigned(good_claims),
        "hs256": jwt.encode(good_claims, hs_key, alg="HS256"),
        "foreign-key": assertion(other, client_id, now=now),
        "wrong-aud": assertion(key, client_id, now=now, aud="https://evil.example/token"),
        "aud-other-endpoint-of-issuer": assertion(key, client_id, now=now, aud=ISSUER + "/x"),
        "no-aud": assertion(key, client_id, now=now, drop=("aud",)),
        "no-exp": assertion(key, client_id, now=now, drop=("exp",)),
        "expired": assertion(key, client_id, now=now, exp=now - 11),
        "exp-too-far-without-iat": assertion(key, client_id, now=now, exp=now + 301, drop=("iat",)),
        "distant-exp-but-iat-too-old": assertion(
            key, client_id, now=now, exp=now + 3600, iat=now - 311
        ),
        "no-jti": assertion(key, client_id, now=now, drop=("jti",)),
        "empty-jti": assertion(key, client_id, now=now, jti=""),
        "huge-jti": assertion(key, client_id, now=now, jti="j" * 257),
        "control-jti": assertion(key, client_id, now=now, jti="a\u0000b"),
        "iss-not-sub": assertion(key, client_id, now=now, iss="someone-else"),
        "sub-unknown": assertion(key, "ghost", now=now),
        "not-yet-valid": assertion(key, client_id, now=now, nbf=now + 60),
        "issued-in-future": assertion(key, client_id, now=now, iat=now + 60),
        "garbage": "not-a-jwt",
        "two-parts": "abc.def",
        "payload-not-json": "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln",
        "payload-array": "eyJhbGciOiJFUzI1NiJ9.WzFd.c2ln",
        "tampered": assertion(key, client_id, now=now)[:-4] + "AAAA",
    }


BAD_ASSERTIONS = list(
    _bad_assertions(JWK.generate("EC", crv="P-256"), JWK.generate("EC", crv="P-256"), "c", 0).keys()
)


@pytest.mark.parametrize("case", BAD_ASSERTIONS)
async def test_bad_assertion_is_invalid_client(  # noqa: PLR0917 - pytest fixtures
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    client_key: JWK,
    clock: Any,
    case: str,
) -> None:
    client = await jwt_client(client_factory, client_key)
    other = JWK.generate("EC", crv="P-256", alg="ES256", kid="client-1")
    token = _bad_assertions(client_key, other, client.client_id, clock.now)[case]
    expect(await refused(ctx, store, assertion_form(token)), "invalid_client", 401)


async def test_assertion_for_secret_client_is_invalid_client(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, client_key: JWK, clock: Any
) -> None:
    client, _ = await confidential_client(client_factory, jwks=client_jwks(client_key))
    token = assertion(client_key, client.client_id, now=clock.now)
    expect(await refused(ctx, store, assertion_form(token)), "invalid_client", 401)


async def test_assertion_naming_another_client_in_form_is_invalid_client(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, client_key: JWK, clock: Any
) -> None:
    victim = await jwt_client(client_factory, client_key)
    attacker_key = JWK.generate("EC", crv="P-256", alg="ES256")
    attacker = await jwt_client(client_factory, attacker_key)
    # Signed by the attacker for itself, but presented under the victim's client_id.
    token = assertion(attacker_key, attacker.client_id, now=clock.now)
    params = assertion_form(token, client_id=victim.client_id)
    expect(await refused(ctx, store, params), "invalid_client", 401)


async def test_wrong_assertion_type_is_invalid_client(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, client_key: JWK, clock: Any
) -> None:
    client = await jwt_client(client_factory, client_key)
    params = assertion_form(assertion(client_key, client.client_id, now=clock.now))
    params["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
    expect(await refused(ctx, store, params), "invalid_client", 401)


async def test_assertion_without_type_is_invalid_request(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, client_key: JWK, clock: Any
) -> None:
    client = await jwt_client(client_factory, client_key)
    token = assertion(client_key, client.client_id, now=clock.now)
    params = {**CC, "client_assertion": token}
    expect(await refused(ctx, store, params), "invalid_request", 400)


async def test_assertion_type_without_assertion_is_invalid_request(
    ctx: Context, store: MemoryStore
) -> None:
    params = {**CC, "client_id": "x", "client_assertion_type": ASSERTION_TYPE}
    expect(await refused(ctx, store, params), "invalid_request", 400)


async def test_client_with_unusable_registered_jwks_is_invalid_client(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, client_key: JWK, clock: Any
) -> None:
    client = await client_factory(
        auth_method="private_key_jwt", jwks={"keys": "nope"}, grant_types=ALL_GRANTS
    )
    token = assertion(client_key, client.client_id, now=clock.now)
    expect(await refused(ctx, store, assertion_form(token)), "invalid_client", 401)


async def test_parse_errors_are_oauth_errors() -> None:
    with pytest.raises(InvalidClient):
        parse_basic_authorization("Basic ???")
    with pytest.raises(InvalidRequest):
        parse_form(token_request({"a": ["1", "2"]}))
