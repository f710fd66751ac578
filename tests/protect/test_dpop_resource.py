"""DPoP at the resource server (RFC 9449 §7): a bound token is accepted only with a fresh
proof of its key for this very request, and never as a plain bearer token. The client side
is `DPoPAuth`, the httpx helper users get."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from protect_issuer import AUDIENCE, ISSUER, Clock, FakeIssuer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ostiary.protect import DPoPAuth, DPoPKey, ProtectMiddleware, ResourceServer

pytestmark = pytest.mark.anyio

BASE = "https://notes.example"


@pytest.fixture
def holder(clock: Clock) -> DPoPKey:
    return DPoPKey.generate(clock=clock)


def notes_app(api: ResourceServer) -> FastAPI:
    app = FastAPI()
    reader = api.require_scopes("notes:read")

    @app.get("/notes")
    async def notes(claims: dict[str, Any] = Depends(reader)) -> Any:
        return {"jkt": claims["cnf"]["jkt"]}

    @app.post("/notes")
    async def write(claims: dict[str, Any] = Depends(reader)) -> Any:
        return {"ok": True}

    return app


@pytest.fixture
def transport(api: ResourceServer) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=notes_app(api))


def bound_token(issuer: FakeIssuer, key: DPoPKey, **claims: Any) -> str:
    return issuer.token(cnf={"jkt": key.jkt}, **claims)


async def send(
    transport: httpx.ASGITransport,
    token: str,
    proof: str | None,
    *,
    method: str = "GET",
    path: str = "/notes",
    scheme: str = "DPoP",
) -> httpx.Response:
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        return await http.request(method, path, headers=headers)


def assert_dpop_error(response: httpx.Response, error: str, fragment: str = "") -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer, DPoP "), challenge
    assert f'DPoP error="{error}"' in challenge
    assert fragment in challenge


async def test_bound_token_with_its_proof_accepted(
    transport: httpx.ASGITransport, issuer: FakeIssuer, holder: DPoPKey
) -> None:
    token = bound_token(issuer, holder)
    auth = DPoPAuth(holder, access_token=token)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, auth=auth) as http:
        for _ in range(3):  # a fresh proof each time
            response = await http.get("/notes", params={"page": "2"})
            assert (response.status_code, response.json()) == (200, {"jkt": holder.jkt})
        assert (await http.post("/notes")).status_code == 200


async def test_stolen_bound_token_as_bearer_refused(
    transport: httpx.ASGITransport, issuer: FakeIssuer, holder: DPoPKey
) -> None:
    token = bound_token(issuer, holder)
    response = await send(transport, token, None, scheme="Bearer")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert "bound to a DPoP key" in response.headers["www-authenticate"]


async def test_stolen_bound_token_with_the_thiefs_own_proof_refused(
    transport: httpx.ASGITransport, issuer: FakeIssuer, holder: DPoPKey
) -> None:
    token = bound_token(issuer, holder)
    thief = DPoPKey.generate(clock=holder._clock)
    proof = thief.proof("GET", BASE + "/notes", access_token=token)
    assert_dpop_error(await send(transport, token, proof), "invalid_dpop_proof", "not signed by")


async def test_replayed_proof_refused(
    transport: httpx.ASGITransport, issuer: FakeIssuer, holder: DPoPKey
) -> None:
    token = bound_token(issuer, holder)
    proof = holder.proof("GET", BASE + "/notes", access_token=token)
    assert (await send(transport, token, proof)).status_code == 200
    assert_dpop_error(await send(transport, token, proof), "invalid_dpop_proof", "already used")


@pytest.mark.parametrize(
    ("method", "url", "fragment"),
    [
        ("POST", BASE + "/notes", "htm"),
        ("GET", BASE + "/other", "htu"),
        ("GET", "https://evil.example/notes", "htu"),
        ("GET", "http://notes.example/notes", "htu"),
    ],
)
async def test_proof_for_another_request_refused(
    transport: httpx.ASGITransport,
    issuer: FakeIssuer,
    holder: DPoPKey,
    *,
    method: str,
    url: str,
    fragment: str,
) -> None:
    token = bound_token(issuer, holder)
    proof = holder.proof(method, url, access_token=token)
    assert_dpop_error(await send(transport, token, proof), "invalid_dpop_proof", fragment)


async def test_proof_for_another_token_refused(
    transport: httpx.ASGITransport, issuer: FakeIssuer, holder: DPoPKey
) -> None:
    token = bound_token(issuer, holder)
    proof = holder.proof("GET", BASE + "/notes", access_token=bound_token(issuer, holder, jti="2"))
    assert_dpop_error(await send(transport, token, proof), "invalid_dpop_proof", "ath")
    no_ath = holder.proof("GET", BASE + "/notes")
    assert_dpop_error(await send(transport, token, no_ath), "invalid_dpop_proof", "ath")


async def test_old_proof_refused(
    transport: httpx.ASGITransport, issuer: FakeIssuer, holder: DPoPKey, clock: Clock
) -> None:
    token = bound_token(issuer, holder, exp=int(clock.now) + 3600)
    proof = holder.proof("GET", BASE + "/notes", access_token=token)
    clock.now += 61  # past the iat window
    assert_dpop_error(await send(transport, token, proof), "invalid_dpop_proof", "iat")
    clock.now -= 61
    ahead = DPoPKey(holder.key, clock=lambda: clock.now + 61)  # a proof from the future
    future = ahead.proof("GET", BASE + "/notes", access_token=token)
    assert_dpop_error(await send(transport, token, future), "invalid_dpop_proof", "iat")


async def send_two_proofs(transport: httpx.ASGITransport, token: str, proofs: list[str]) -> Any:
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        return await http.get(
            "/notes",
            headers=httpx.Headers(
                [("Authorization", f"DPoP {token}"), *(("DPoP", proof) for proof in proofs)]
            ),
        )


async def test_dpop_scheme_without_proof_refused(
    transport: httpx.ASGITransport, issuer: FakeIssuer, holder: DPoPKey
) -> None:
    token = bound_token(issuer, holder)
    assert_dpop_error(await send(transport, token, None), "invalid_dpop_proof", "needs a DPoP")


async def test_two_dpop_headers_refused_as_an_invalid_proof(
    api: ResourceServer, issuer: FakeIssuer, holder: DPoPKey
) -> None:
    # RFC 9449 §4.3 check 1: "not more than one DPoP HTTP request header field"; a proof
    # failing §4.3 is invalid_dpop_proof at the resource server, 401 in the DPoP challenge
    # (§7.1), as at the token endpoint (400 invalid_dpop_proof, §5). Two good proofs, the
    # same twice, or a good one beside another key's: each pair is refused, by the
    # dependency and by the middleware alike
    async def claims(request: Request) -> Response:
        return JSONResponse(request.state.token_claims["cnf"])

    middleware = Starlette(routes=[Route("/notes", claims)])
    middleware.add_middleware(ProtectMiddleware, resource_server=api)
    token = bound_token(issuer, holder)
    other = DPoPKey.generate(clock=holder._clock)
    url = BASE + "/notes"
    for app in (notes_app(api), middleware):
        transport = httpx.ASGITransport(app=app)
        first = holder.proof("GET", url, access_token=token)
        pairs = [
            [first, first],
            [holder.proof("GET", url, access_token=token) for _ in range(2)],
            [holder.proof("GET", url, access_token=token), other.proof("GET", url)],
        ]
        for proofs in pairs:
            response = await send_two_proofs(transport, token, proofs)
            assert_dpop_error(response, "invalid_dpop_proof", "send one DPoP header")
        # one of them alone still passes: the refusal spent nothing
        response = await send_two_proofs(transport, token, [pairs[1][1]])
        assert response.status_code == 200, response.text


async def test_two_dpop_headers_where_dpop_is_off_are_a_bad_request(
    http: httpx.AsyncClient, clock: Clock, issuer: FakeIssuer, holder: DPoPKey
) -> None:
    async with ResourceServer(
        issuer=ISSUER, audience=AUDIENCE, dpop=False, http=http, clock=clock
    ) as api:
        transport = httpx.ASGITransport(app=notes_app(api))
        token = bound_token(issuer, holder)
        proof = holder.proof("GET", BASE + "/notes", access_token=token)
        response = await send_two_proofs(transport, token, [proof, proof])
    assert response.status_code == 400, response.text
    assert response.json() == {"detail": "this API accepts Bearer tokens"}


async def test_unbound_token_with_dpop_scheme_refused(
    transport: httpx.ASGITransport, issuer: FakeIssuer, holder: DPoPKey
) -> None:
    token = issuer.token()
    proof = holder.proof("GET", BASE + "/notes", access_token=token)
    response = await send(transport, token, proof)
    assert_dpop_error(response, "invalid_token", "not DPoP-bound")


@pytest.mark.parametrize("proof", ["garbage", "a.b.c", "x" * 20_000])
async def test_garbage_proofs_refused(
    transport: httpx.ASGITransport, issuer: FakeIssuer, holder: DPoPKey, proof: str
) -> None:
    response = await send(transport, bound_token(issuer, holder), proof)
    assert response.status_code in (400, 401)


async def test_dpop_required_refuses_bearer_tokens(
    http: httpx.AsyncClient, clock: Clock, issuer: FakeIssuer, holder: DPoPKey
) -> None:
    async with ResourceServer(
        issuer=ISSUER, audience=AUDIENCE, dpop_required=True, http=http, clock=clock
    ) as api:
        transport = httpx.ASGITransport(app=notes_app(api))
        response = await send(transport, issuer.token(), None, scheme="Bearer")
        assert response.status_code == 401
        assert "only DPoP-bound" in response.headers["www-authenticate"]


async def test_public_url_names_the_htu_behind_a_proxy(
    http: httpx.AsyncClient, clock: Clock, issuer: FakeIssuer, holder: DPoPKey
) -> None:
    async with ResourceServer(
        issuer=ISSUER,
        audience=AUDIENCE,
        public_url="https://api.example/v1/",
        http=http,
        clock=clock,
    ) as api:
        transport = httpx.ASGITransport(app=notes_app(api))
        token = bound_token(issuer, holder)
        outside = holder.proof("GET", "https://api.example/v1/notes", access_token=token)
        assert (await send(transport, token, outside)).status_code == 200
        inside = holder.proof("GET", BASE + "/notes", access_token=token)
        assert_dpop_error(await send(transport, token, inside), "invalid_dpop_proof", "htu")


async def test_middleware_checks_dpop_too(
    api: ResourceServer, issuer: FakeIssuer, holder: DPoPKey
) -> None:
    async def jkt(request: Request) -> Response:
        return JSONResponse(request.state.token_claims["cnf"])

    app = Starlette(routes=[Route("/notes", jkt)])
    app.add_middleware(ProtectMiddleware, resource_server=api)
    transport = httpx.ASGITransport(app=app)
    token = bound_token(issuer, holder)
    auth = DPoPAuth(holder, access_token=token)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, auth=auth) as client:
        assert (await client.get("/notes")).json() == {"jkt": holder.jkt}
    assert (await send(transport, token, None, scheme="Bearer")).status_code == 401


async def test_dpop_auth_retries_once_with_the_servers_nonce(holder: DPoPKey) -> None:
    seen: list[str | None] = []

    async def token_endpoint(request: Request) -> Response:
        proof = request.headers["dpop"]
        from ostiary.jose import jwt

        claims, _ = jwt.decode_with_embedded_key(
            proof, algorithms=["ES256"], typ="dpop+jwt", now=holder._clock()
        )
        nonce = claims.get("nonce")
        seen.append(nonce)
        if nonce not in ("n-1", "n-2"):
            return JSONResponse(
                {"error": "use_dpop_nonce"}, status_code=400, headers={"DPoP-Nonce": "n-1"}
            )
        return JSONResponse({"token_type": "DPoP"}, headers={"DPoP-Nonce": "n-2"})

    app = Starlette(routes=[Route("/token", token_endpoint, methods=["POST"])])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="https://auth.example", auth=DPoPAuth(holder)
    ) as client:
        response = await client.post("/token", data={"grant_type": "client_credentials"})
        assert response.status_code == 200
        await client.post("/token", data={"grant_type": "client_credentials"})
    assert seen == [None, "n-1", "n-2"]


def test_dpop_key_must_be_private_and_asymmetric() -> None:
    from ostiary.jose.jwk import JWK

    with pytest.raises(ValueError, match="private asymmetric"):
        DPoPKey(JWK.generate("EC", crv="P-256", alg="ES256").public())
    with pytest.raises(ValueError, match="alg must be"):
        DPoPKey.generate("HS256")
    assert DPoPKey.generate("EdDSA").jkt


async def test_missing_scope_on_a_dpop_request_is_answered_in_the_dpop_challenge(
    http: httpx.AsyncClient, clock: Clock, issuer: FakeIssuer, holder: DPoPKey
) -> None:
    async with ResourceServer(issuer=ISSUER, audience=AUDIENCE, http=http, clock=clock) as api:
        app = FastAPI()
        admin = api.require_scopes("notes:admin")

        @app.get("/admin")
        async def admin_only(claims: dict[str, Any] = Depends(admin)) -> Any:
            return {}

        token = bound_token(issuer, holder)
        proof = holder.proof("GET", BASE + "/admin", access_token=token)
        response = await send(httpx.ASGITransport(app=app), token, proof, path="/admin")
    assert response.status_code == 403
    assert 'DPoP error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="notes:admin"' in response.headers["www-authenticate"]
