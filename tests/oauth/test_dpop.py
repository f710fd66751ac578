"""DPoP (RFC 9449) at the token endpoint: proofs checked (htm, htu, iat, jti replay, typ,
algorithm, key), tokens bound to the key (`cnf.jkt`, `token_type: DPoP`), public clients'
refresh tokens bound too, nonces when the server asks for them."""

from __future__ import annotations

import dataclasses
import json
import secrets
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

from ostiary.jose import jws, jwt
from ostiary.jose.dpop import normalize_htu
from ostiary.jose.jwk import JWK
from ostiary.oauth.config import ServerConfig
from ostiary.oauth.context import Context
from ostiary.oauth.dpop import is_fresh_nonce, new_nonce
from ostiary.oauth.introspection import handle_introspection_request
from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.metadata import authorization_server_metadata
from ostiary.oauth.models import Client
from ostiary.oauth.token_endpoint import TokenResponse, handle_token_request

pytestmark = pytest.mark.anyio

TOKEN_URL = ISSUER + "/token"


@pytest.fixture(scope="module")
def holder() -> JWK:
    return JWK.generate("EC", crv="P-256", alg="ES256")


def make_proof(
    key: JWK,
    now: int,
    *,
    header: dict[str, Any] | None = None,
    alg: str = "ES256",
    **claims: Any,
) -> str:
    body = {"htm": "POST", "htu": TOKEN_URL, "iat": now, "jti": secrets.token_urlsafe(12)}
    body.update(claims)
    headers = {"typ": "dpop+jwt", "jwk": key.public().to_dict(), **(header or {})}
    body = {k: v for k, v in body.items() if v is not None}
    if not isinstance(body["iat"], int):  # a claim jwt.encode refuses to write: raw JSON
        return jws.sign(json.dumps(body), key, alg=alg, headers={"alg": alg, **headers})
    return jwt.encode(body, key, alg=alg, headers=headers)


async def client_credentials(
    ctx: Context, client: Client, secret: str, dpop: tuple[str, ...], **params: str
) -> TokenResponse:
    request = token_request(
        {"grant_type": "client_credentials", **params},
        authorization=basic(client.client_id, secret),
    )
    return await handle_token_request(dataclasses.replace(request, dpop=dpop), ctx)


async def test_proof_binds_the_access_token_to_the_key(
    ctx: Context, client_factory: ClientFactory, holder: JWK, es256_key: JWK, clock: Clock
) -> None:
    client, secret = await confidential_client(client_factory)
    response = await client_credentials(ctx, client, secret, (make_proof(holder, clock.now),))
    assert response.status == 200, response.body
    assert response.body["token_type"] == "DPoP"
    claims = jwt.decode(
        response.body["access_token"],
        es256_key,
        algorithms=["ES256"],
        audience=ISSUER,
        typ="at+jwt",
        now=clock.now,
    )
    assert claims["cnf"] == {"jkt": holder.thumbprint()}


async def test_without_a_proof_the_token_is_a_bearer_token(
    ctx: Context, client_factory: ClientFactory, clock: Clock
) -> None:
    client, secret = await confidential_client(client_factory)
    response = await client_credentials(ctx, client, secret, ())
    assert response.body["token_type"] == "Bearer"


async def test_opaque_bound_token_introspects_with_cnf(
    ctx: Context, client_factory: ClientFactory, holder: JWK, clock: Clock
) -> None:
    client, secret = await confidential_client(client_factory, token_format="opaque")
    response = await client_credentials(ctx, client, secret, (make_proof(holder, clock.now),))
    token = response.body["access_token"]
    answer = await handle_introspection_request(
        token_request({"token": token}, authorization=basic(client.client_id, secret)), ctx
    )
    assert answer.body["active"] is True
    assert answer.body["cnf"] == {"jkt": holder.thumbprint()}
    assert answer.body["token_type"] == "DPoP"


def _bad_proofs(holder: JWK, now: int) -> dict[str, tuple[str, ...]]:
    other = JWK.generate("EC", crv="P-256", alg="ES256")
    rsa_small = JWK.generate("RSA", size=2048, alg="RS256")
    return {
        "wrong-htm": (make_proof(holder, now, htm="GET"),),
        "wrong-htu": (make_proof(holder, now, htu="https://auth.example/other"),),
        "htu-other-host": (make_proof(holder, now, htu="https://evil.example/token"),),
        "iat-too-old": (make_proof(holder, now - 61),),
        "iat-in-the-future": (make_proof(holder, now + 61),),
        "iat-not-a-number": (make_proof(holder, now, iat=str(now)),),
        "no-jti": (make_proof(holder, now, jti=None),),
        "jti-too-long": (make_proof(holder, now, jti="j" * 300),),
        "wrong-typ": (make_proof(holder, now, header={"typ": "JWT"}),),
        "no-jwk": (
            jwt.encode(
                {"htm": "POST", "htu": TOKEN_URL, "iat": now, "jti": "x"},
                holder,
                alg="ES256",
                headers={"typ": "dpop+jwt"},
            ),
        ),
        "private-jwk": (make_proof(holder, now, header={"jwk": holder.to_dict(private=True)}),),
        "signed-by-another-key": (
            make_proof(other, now, header={"jwk": holder.public().to_dict()}),
        ),
        "key-of-another-alg": (
            make_proof(rsa_small, now, alg="RS256", header={"jwk": holder.public().to_dict()}),
        ),
        "two-headers": (make_proof(holder, now), make_proof(holder, now)),
        "garbage": ("not-a-jwt",),
        "oversized": ("a" * 20_000,),
    }


BAD = [
    "wrong-htm", "wrong-htu", "htu-other-host", "iat-too-old", "iat-in-the-future",
    "iat-not-a-number", "no-jti", "jti-too-long", "wrong-typ", "no-jwk", "private-jwk",
    "signed-by-another-key", "key-of-another-alg", "two-headers", "garbage", "oversized",
]  # fmt: skip


@pytest.mark.parametrize("case", BAD)
async def test_bad_proof_is_invalid_dpop_proof_and_changes_nothing(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    holder: JWK,
    case: str,
) -> None:
    client, secret = await confidential_client(client_factory)
    before = snapshot(store)
    response = await client_credentials(ctx, client, secret, _bad_proofs(holder, ctx.now())[case])
    assert (response.status, response.body["error"]) == (400, "invalid_dpop_proof"), response.body
    assert snapshot(store) == before


async def test_replayed_proof_refused(
    ctx: Context, client_factory: ClientFactory, holder: JWK, clock: Clock
) -> None:
    client, secret = await confidential_client(client_factory)
    proof = make_proof(holder, clock.now)
    assert (await client_credentials(ctx, client, secret, (proof,))).status == 200
    clock.advance(5)
    again = await client_credentials(ctx, client, secret, (proof,))
    assert (again.status, again.body["error"]) == (400, "invalid_dpop_proof")
    assert "already used" in again.body["error_description"]


async def test_htu_compared_without_default_port_or_case(
    ctx: Context, client_factory: ClientFactory, holder: JWK, clock: Clock
) -> None:
    client, secret = await confidential_client(client_factory)
    proof = make_proof(holder, clock.now, htu="HTTPS://Auth.Example:443/token?x=1")
    assert (await client_credentials(ctx, client, secret, (proof,))).status == 200
    assert normalize_htu("http://a.example:80/p#f") == "http://a.example/p"
    assert normalize_htu("http://[::1]:8080/p") == "http://[::1]:8080/p"


async def test_public_clients_refresh_token_is_bound_to_the_key(
    ctx: Context,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    holder: JWK,
    clock: Clock,
) -> None:
    client = await client_factory()  # public, code + refresh
    user = await user_factory()
    code, verifier, _ = await put_code(ctx, client, user_id=user.user_id)
    params = code_params(code, verifier, client_id=client.client_id)
    first = await handle_token_request(
        dataclasses.replace(token_request(params), dpop=(make_proof(holder, clock.now),)), ctx
    )
    assert first.status == 200, first.body
    assert first.body["token_type"] == "DPoP"
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": first.body["refresh_token"],
        "client_id": client.client_id,
    }
    stolen = await handle_token_request(token_request(refresh), ctx)  # no proof: refused
    assert (stolen.status, stolen.body["error"]) == (400, "invalid_grant")
    thief = JWK.generate("EC", crv="P-256", alg="ES256")
    other_key = await handle_token_request(
        dataclasses.replace(token_request(refresh), dpop=(make_proof(thief, clock.now),)), ctx
    )
    assert (other_key.status, other_key.body["error"]) == (400, "invalid_grant")
    rotated = await handle_token_request(
        dataclasses.replace(token_request(refresh), dpop=(make_proof(holder, clock.now),)), ctx
    )
    assert rotated.status == 200, rotated.body
    assert rotated.body["token_type"] == "DPoP"
    # the new refresh token of the family is bound to the same key
    next_refresh = {**refresh, "refresh_token": rotated.body["refresh_token"]}
    assert (await handle_token_request(token_request(next_refresh), ctx)).status == 400


async def test_confidential_clients_refresh_token_is_not_bound(
    ctx: Context,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    holder: JWK,
    clock: Clock,
) -> None:
    client, secret = await confidential_client(client_factory)
    user = await user_factory()
    code, verifier, _ = await put_code(ctx, client, user_id=user.user_id)
    auth = basic(client.client_id, secret)
    first = await handle_token_request(
        dataclasses.replace(
            token_request(code_params(code, verifier), authorization=auth),
            dpop=(make_proof(holder, clock.now),),
        ),
        ctx,
    )
    assert first.status == 200, first.body
    refresh = {"grant_type": "refresh_token", "refresh_token": first.body["refresh_token"]}
    plain = await handle_token_request(token_request(refresh, authorization=auth), ctx)
    assert plain.status == 200, plain.body
    assert plain.body["token_type"] == "Bearer"


@pytest.fixture
def nonce_ctx(ctx: Context) -> Context:
    config = dataclasses.replace(ctx.config, dpop_nonce_secret=b"n" * 32)
    return dataclasses.replace(ctx, config=config)


async def test_nonce_required_when_configured(
    nonce_ctx: Context, client_factory: ClientFactory, holder: JWK, clock: Clock
) -> None:
    client, secret = await confidential_client(client_factory)
    first = await client_credentials(nonce_ctx, client, secret, (make_proof(holder, clock.now),))
    assert (first.status, first.body["error"]) == (400, "use_dpop_nonce")
    nonce = first.headers["DPoP-Nonce"]
    retry = await client_credentials(
        nonce_ctx, client, secret, (make_proof(holder, clock.now, nonce=nonce),)
    )
    assert retry.status == 200, retry.body
    assert "DPoP-Nonce" in retry.headers
    forged = await client_credentials(
        nonce_ctx, client, secret, (make_proof(holder, clock.now, nonce="A" * 32),)
    )
    assert forged.body["error"] == "use_dpop_nonce"


def test_nonces_expire_and_are_bound_to_the_secret() -> None:
    secret = b"s" * 32
    nonce = new_nonce(secret, 1000)
    assert is_fresh_nonce(secret, nonce, 1000)
    assert is_fresh_nonce(secret, nonce, 1300)
    assert not is_fresh_nonce(secret, nonce, 1301)
    assert not is_fresh_nonce(secret, nonce, 998)
    assert not is_fresh_nonce(b"t" * 32, nonce, 1000)
    assert not is_fresh_nonce(secret, None, 1000)
    assert not is_fresh_nonce(secret, "!" * 32, 1000)


def test_metadata_lists_dpop_algorithms() -> None:
    metadata = authorization_server_metadata(ServerConfig(issuer=ISSUER))
    algorithms = metadata["dpop_signing_alg_values_supported"]
    assert "ES256" in algorithms
    assert not [alg for alg in algorithms if alg.startswith("HS") or alg == "none"]
