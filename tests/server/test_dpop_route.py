"""DPoP through the app: the `DPoP` header reaches the core, a bound token comes back, and
with `OSTIARY_DPOP_NONCES` the server hands out nonces in `DPoP-Nonce` (RFC 9449 §8)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from server_app import ISSUER, Clock, Served, make_settings, serve

from ostiary.jose import jwt
from ostiary.jose.jwk import JWK
from ostiary.server.passwords import Argon2PasswordHasher

pytestmark = pytest.mark.anyio

HOLDER = JWK.generate("EC", crv="P-256", alg="ES256")


def proof(now: int, nonce: str | None = None) -> str:
    claims = {"htm": "POST", "htu": ISSUER + "/token", "iat": now, "jti": secrets.token_hex(8)}
    if nonce is not None:
        claims["nonce"] = nonce
    headers = {"typ": "dpop+jwt", "jwk": HOLDER.public().to_dict()}
    return jwt.encode(claims, HOLDER, alg="ES256", headers=headers)


async def token(served: Served, client_id: str, secret: str, dpop: str) -> httpx.Response:
    return await served.http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        headers={"DPoP": dpop},
    )


async def test_dpop_header_gives_a_bound_token(served: Served) -> None:
    client, secret = await served.add_client()
    assert secret is not None
    response = await token(served, client.client_id, secret, proof(served.clock()))
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    claims = jwt.decode(
        response.json()["access_token"],
        await served.runtime.keyring.published(),
        algorithms=["ES256"],
        audience=ISSUER,
        now=served.clock(),
    )
    assert claims["cnf"]["jkt"] == HOLDER.thumbprint()
    replayed = await served.http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, secret),
        headers={"DPoP": "not a proof"},
    )
    assert (replayed.status_code, replayed.json()["error"]) == (400, "invalid_dpop_proof")


@pytest.fixture
async def nonce_served(
    tmp_path: Path, clock: Clock, hasher: Argon2PasswordHasher
) -> AsyncIterator[Served]:
    settings = make_settings(tmp_path, issuer=ISSUER, dpop_nonces=True)
    async with serve(settings, clock=clock, hasher=hasher) as app:
        yield app


async def test_nonce_handed_out_and_required(nonce_served: Served) -> None:
    client, secret = await nonce_served.add_client()
    assert secret is not None
    first = await token(nonce_served, client.client_id, secret, proof(nonce_served.clock()))
    assert (first.status_code, first.json()["error"]) == (400, "use_dpop_nonce")
    nonce = first.headers["dpop-nonce"]
    second = await token(nonce_served, client.client_id, secret, proof(nonce_served.clock(), nonce))
    assert second.status_code == 200, second.text
    assert second.headers["dpop-nonce"]


async def test_metadata_advertises_dpop(served: Served) -> None:
    metadata = (await served.http.get("/.well-known/oauth-authorization-server")).json()
    assert "ES256" in metadata["dpop_signing_alg_values_supported"]
