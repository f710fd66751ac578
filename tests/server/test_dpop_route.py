"""DPoP through the app: the `DPoP` header reaches the core, a bound token comes back, and
with `OSTIARY_DPOP_NONCES` the server hands out nonces in `DPoP-Nonce` (RFC 9449 §8). The
token endpoint and `ostiary.protect` refuse the same bad proofs, each in its own shape."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from server_app import ISSUER, Clock, Served, make_settings, serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ostiary.jose import jws, jwt
from ostiary.jose.dpop import access_token_hash
from ostiary.jose.jwk import JWK
from ostiary.protect import ProtectMiddleware, ResourceServer
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


async def test_two_dpop_headers_are_an_invalid_proof(served: Served) -> None:
    # RFC 9449 §4.3 check 1, "not more than one DPoP HTTP request header field"; §5: a proof
    # failing §4.3 is invalid_dpop_proof at the token endpoint (the resource server says the
    # same in its DPoP challenge, §7.1)
    client, secret = await served.add_client()
    assert secret is not None
    first, second = proof(served.clock()), proof(served.clock())
    two = await served.http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, secret),
        headers=httpx.Headers([("DPoP", first), ("DPoP", second)]),
    )
    assert (two.status_code, two.json()["error"]) == (400, "invalid_dpop_proof")
    assert "one DPoP header" in two.json()["error_description"]
    # neither was spent: each alone still gets a bound token
    for one in (first, second):
        response = await token(served, client.client_id, secret, one)
        assert response.status_code == 200, response.text


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


# -- the token endpoint and a resource server refuse the same bad proofs --------------------

API_URL = "https://notes.example/notes"
OTHER = JWK.generate("EC", crv="P-256", alg="ES256")
RSA = JWK.generate("RSA", size=2048, alg="RS256")
SECRET = JWK.generate("oct", size=256, alg="HS256")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def proof_for(
    method: str,
    url: str,
    now: int,
    access_token: str | None,
    *,
    key: JWK = HOLDER,
    header: dict[str, Any] | None = None,
    alg: str = "ES256",
    **claims: Any,
) -> str:
    """A proof of `key` for one request, changed by `header` and `claims` (None: left out)."""
    body: dict[str, Any] = {"htm": method, "htu": url, "iat": now, "jti": secrets.token_hex(8)}
    if access_token is not None:
        body["ath"] = access_token_hash(access_token)
    body = {name: value for name, value in {**body, **claims}.items() if value is not None}
    headers = {"alg": alg, "typ": "dpop+jwt", "jwk": HOLDER.public().to_dict(), **(header or {})}
    if alg == "none":
        return f"{b64(json.dumps(headers).encode())}.{b64(json.dumps(body).encode())}."
    return jws.sign(json.dumps(body), key, alg=alg, headers=headers)


def with_netloc(url: str, netloc: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{netloc}{parts.path}"


# each bad proof for (method, url, now, access token): the same flaw for either side
Maker = Callable[[str, str, int, "str | None"], str]
BAD_PROOFS: dict[str, Maker] = {
    "wrong-htm": lambda m, u, n, t: proof_for(m, u, n, t, htm="PUT"),
    "wrong-htu": lambda m, u, n, t: proof_for(m, u, n, t, htu=u + "/other"),
    "htu-other-host": lambda m, u, n, t: proof_for(m, u, n, t, htu=with_netloc(u, "evil.test")),
    "htu-with-userinfo": lambda m, u, n, t: proof_for(
        m, u, n, t, htu=with_netloc(u, "user@" + urlsplit(u).netloc)
    ),
    "htu-port-not-a-number": lambda m, u, n, t: proof_for(
        m, u, n, t, htu=with_netloc(u, f"{urlsplit(u).hostname}:x")
    ),
    "iat-stale": lambda m, u, n, t: proof_for(m, u, n - 61, t),
    "iat-in-the-future": lambda m, u, n, t: proof_for(m, u, n + 61, t),
    "iat-not-an-integer": lambda m, u, n, t: proof_for(m, u, n, t, iat=n + 0.5),
    "iat-a-string": lambda m, u, n, t: proof_for(m, u, n, t, iat=str(n)),
    "no-jti": lambda m, u, n, t: proof_for(m, u, n, t, jti=None),
    "jti-too-long": lambda m, u, n, t: proof_for(m, u, n, t, jti="j" * 300),
    "nonce-not-a-string": lambda m, u, n, t: proof_for(m, u, n, t, nonce=7),
    "typ-jwt": lambda m, u, n, t: proof_for(m, u, n, t, header={"typ": "JWT"}),
    "alg-none": lambda m, u, n, t: proof_for(m, u, n, t, alg="none"),
    "hmac": lambda m, u, n, t: proof_for(
        m, u, n, t, key=SECRET, alg="HS256", header={"jwk": SECRET.to_dict(private=True)}
    ),
    "private-key-in-jwk": lambda m, u, n, t: proof_for(
        m, u, n, t, header={"jwk": HOLDER.to_dict(private=True)}
    ),
    "private-member-in-jwk": lambda m, u, n, t: proof_for(
        m, u, n, t, key=RSA, alg="RS256", header={"jwk": {**RSA.public().to_dict(), "oth": []}}
    ),
    "signed-by-another-key": lambda m, u, n, t: proof_for(m, u, n, t, key=OTHER),
    "garbage": lambda m, u, n, t: "not-a-jwt",
    "oversized": lambda m, u, n, t: proof_for(m, u, n, t, padding="p" * 20_000),
}


@dataclass(frozen=True)
class Bound:
    """A server, a client of it, a token bound to HOLDER, and an API that trusts the server."""

    served: Served
    client_id: str
    secret: str
    access_token: str
    api: httpx.AsyncClient


@pytest.fixture
async def bound(tmp_path: Path, clock: Clock, hasher: Argon2PasswordHasher) -> AsyncIterator[Bound]:
    """On SQLite only: the proof checks never reach the database before the replay check."""
    settings = make_settings(tmp_path, issuer=ISSUER)
    async with serve(settings, clock=clock, hasher=hasher) as served:
        client, secret = await served.add_client()
        assert secret is not None
        issued = await token(served, client.client_id, secret, proof(served.clock()))
        assert issued.status_code == 200, issued.text
        async with ResourceServer(
            issuer=ISSUER, audience=ISSUER, http=served.http, clock=served.clock
        ) as resource_server:

            async def notes(request: Request) -> Response:
                return JSONResponse(request.state.token_claims["cnf"])

            app = Starlette(routes=[Route("/notes", notes)])
            app.add_middleware(ProtectMiddleware, resource_server=resource_server)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="https://notes.example"
            ) as api:
                access_token = issued.json()["access_token"]
                yield Bound(served, client.client_id, secret, access_token, api)


async def refusals(bound: Bound, make: Maker) -> tuple[httpx.Response, httpx.Response]:
    """What the token endpoint and the API answer to the proofs `make` makes for them."""
    now = bound.served.clock()
    at_token_endpoint = await token(
        bound.served, bound.client_id, bound.secret, make("POST", ISSUER + "/token", now, None)
    )
    headers = {
        "Authorization": f"DPoP {bound.access_token}",
        "DPoP": make("GET", API_URL, now, bound.access_token),
    }
    at_api = await bound.api.get("/notes", headers=headers)
    return at_token_endpoint, at_api


def assert_same_refusal(at_token_endpoint: httpx.Response, at_api: httpx.Response) -> None:
    body = at_token_endpoint.json()
    assert (at_token_endpoint.status_code, body["error"]) == (400, "invalid_dpop_proof"), body
    assert at_api.status_code == 401, at_api.text
    challenge = at_api.headers["www-authenticate"]
    dpop_challenge = challenge[challenge.index("DPoP ") :]
    assert 'DPoP error="invalid_dpop_proof"' in dpop_challenge, challenge
    assert f'error_description="{body["error_description"]}"' in dpop_challenge, challenge


async def test_the_api_accepts_the_servers_bound_token_with_its_proof(bound: Bound) -> None:
    good = proof_for("GET", API_URL, bound.served.clock(), bound.access_token)
    headers = {"Authorization": f"DPoP {bound.access_token}", "DPoP": good}
    response = await bound.api.get("/notes", headers=headers)
    assert (response.status_code, response.json()) == (200, {"jkt": HOLDER.thumbprint()})


@pytest.mark.parametrize("case", list(BAD_PROOFS))
async def test_token_endpoint_and_resource_server_refuse_the_same_bad_proofs(
    bound: Bound, case: str
) -> None:
    assert_same_refusal(*await refusals(bound, BAD_PROOFS[case]))


async def test_token_endpoint_and_resource_server_refuse_a_replayed_proof(
    bound: Bound,
) -> None:
    made: dict[str, str] = {}

    def once(method: str, url: str, now: int, access_token: str | None) -> str:
        return made.setdefault(method, proof_for(method, url, now, access_token))

    first_at_token_endpoint, first_at_api = await refusals(bound, once)
    assert (first_at_token_endpoint.status_code, first_at_api.status_code) == (200, 200)
    bound.served.clock.advance(5)
    at_token_endpoint, at_api = await refusals(bound, once)
    assert_same_refusal(at_token_endpoint, at_api)
    assert "already used" in at_token_endpoint.json()["error_description"]
