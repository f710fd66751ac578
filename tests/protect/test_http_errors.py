"""RFC 6750 on the wire: FastAPI dependencies and `ProtectMiddleware` in front of real ASGI
apps (called through httpx's ASGI transport), every refusal with its status and challenge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from protect_issuer import AUDIENCE, ISSUER, Clock, FakeIssuer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ostiary.protect import ProtectMiddleware, ResourceServer

pytestmark = pytest.mark.anyio

DPOP = 'DPoP algs="ES256 ES384 ES512 EdDSA RS256 RS384 RS512 PS256 PS384 PS512"'
BARE = f"Bearer, {DPOP}"  # RFC 6750 §3.1 and RFC 9449 §7.1: both schemes, no error


def fastapi_app(api: ResourceServer) -> FastAPI:
    app = FastAPI()
    reader, writer, anyone = (
        api.require_scopes("notes:read"),
        api.require_scopes("notes:write"),
        api.require_scopes(),
    )

    @app.get("/notes")
    async def notes(claims: dict[str, Any] = Depends(reader)) -> Any:
        return {"sub": claims["sub"]}

    @app.post("/notes")
    async def write(claims: dict[str, Any] = Depends(writer)) -> Any:
        return {"ok": True}

    @app.get("/me")
    async def me(claims: dict[str, Any] = Depends(anyone)) -> Any:
        return {"sub": claims["sub"]}

    return app


@pytest.fixture
async def client(api: ResourceServer) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fastapi_app(api))
    async with httpx.AsyncClient(transport=transport, base_url="https://notes.example") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_valid_token_reaches_the_endpoint(
    client: httpx.AsyncClient, issuer: FakeIssuer
) -> None:
    response = await client.get("/notes", headers=bearer(issuer.token()))
    assert (response.status_code, response.json()) == (200, {"sub": "user-1"})
    response = await client.get("/notes", headers={"Authorization": f"bearer {issuer.token()}"})
    assert response.status_code == 200  # the scheme is case-insensitive (RFC 9110 §11.1)


async def test_no_token_gets_the_bare_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BARE
    other_scheme = await client.get("/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert (other_scheme.status_code, other_scheme.headers["www-authenticate"]) == (401, BARE)


async def test_expired_token_gets_invalid_token(
    client: httpx.AsyncClient, issuer: FakeIssuer, clock: Clock
) -> None:
    token = issuer.token(exp=int(clock.now) - 60)
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", error_description="the access token has expired", {DPOP}'
    )
    assert token not in response.text


async def test_missing_scope_gets_403_naming_it(
    client: httpx.AsyncClient, issuer: FakeIssuer
) -> None:
    response = await client.post("/notes", headers=bearer(issuer.token()))
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="insufficient_scope"')
    assert 'scope="notes:write"' in challenge


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("Authorization", "Bearer")], id="empty-token"),
        pytest.param([("Authorization", "Bearer a b")], id="space-in-token"),
        pytest.param([(b"Authorization", "Bearer ü".encode())], id="non-ascii"),
        pytest.param([("Authorization", "Bearer " + "a" * 20_000)], id="oversized"),
        pytest.param([("Authorization", "Bearer a"), ("Authorization", "Bearer b")], id="two"),
    ],
)
async def test_malformed_authorization_is_invalid_request(
    client: httpx.AsyncClient, headers: list[tuple[str, str]]
) -> None:
    response = await client.get("/me", headers=httpx.Headers(headers))
    assert response.status_code == 400
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_request"')


async def test_query_token_ignored_unless_enabled(
    client: httpx.AsyncClient, issuer: FakeIssuer
) -> None:
    response = await client.get("/me", params={"access_token": issuer.token()})
    assert (response.status_code, response.headers["www-authenticate"]) == (401, BARE)


async def test_query_and_form_tokens_when_enabled(
    http: httpx.AsyncClient, clock: Clock, issuer: FakeIssuer
) -> None:
    async with ResourceServer(
        issuer=ISSUER,
        audience=AUDIENCE,
        token_in_query=True,
        token_in_form=True,
        http=http,
        clock=clock,
    ) as api:
        transport = httpx.ASGITransport(app=fastapi_app(api))
        async with httpx.AsyncClient(transport=transport, base_url="https://n.example") as c:
            token = issuer.token(scope="notes:read notes:write")
            assert (await c.get("/me", params={"access_token": token})).status_code == 200
            assert (await c.post("/notes", data={"access_token": token})).status_code == 200
            both = await c.get("/me", params={"access_token": token}, headers=bearer(token))
            assert both.status_code == 400
            assert "one way only" in both.headers["www-authenticate"]


async def test_issuer_unreachable_is_503_with_retry_after(
    client: httpx.AsyncClient, issuer: FakeIssuer
) -> None:
    issuer.down = True
    response = await client.get("/me", headers=bearer(issuer.token()))
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1


# -- middleware ----------------------------------------------------------------------------


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.state.token_claims["sub"]})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"claims": hasattr(request.state, "token_claims")})


@pytest.fixture
async def starlette_client(api: ResourceServer) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[Route("/whoami", whoami), Route("/health", health)])
    app.add_middleware(
        ProtectMiddleware, resource_server=api, scopes=["notes:read"], public_paths=["/health"]
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://notes.example") as c:
        yield c


async def test_middleware_passes_claims_to_the_app(
    starlette_client: httpx.AsyncClient, issuer: FakeIssuer
) -> None:
    response = await starlette_client.get("/whoami", headers=bearer(issuer.token()))
    assert (response.status_code, response.json()) == (200, {"sub": "user-1"})


@pytest.mark.parametrize(
    ("overrides", "status", "error"),
    [
        ({"aud": "https://other.example"}, 401, "invalid_token"),
        ({"scope": "profile"}, 403, "insufficient_scope"),
    ],
)
async def test_middleware_refuses_with_a_json_body_and_challenge(
    starlette_client: httpx.AsyncClient,
    issuer: FakeIssuer,
    overrides: dict[str, Any],
    status: int,
    error: str,
) -> None:
    response = await starlette_client.get("/whoami", headers=bearer(issuer.token(**overrides)))
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.headers["www-authenticate"].startswith(f'Bearer error="{error}"')
    assert response.headers["cache-control"] == "no-store"


async def test_middleware_without_token_and_public_path(
    starlette_client: httpx.AsyncClient,
) -> None:
    assert (await starlette_client.get("/whoami")).status_code == 401
    health = await starlette_client.get("/health")
    assert (health.status_code, health.json()) == (200, {"claims": False})


async def test_middleware_guards_websockets_too(api: ResourceServer, issuer: FakeIssuer) -> None:
    """A WebSocket route behind the middleware is not a way around it."""
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["state"]["token_claims"]["sub"])

    guarded = ProtectMiddleware(app, resource_server=api)

    async def handshake(headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "websocket",
            "path": "/ws",
            "raw_path": b"/ws",
            "query_string": b"",
            "headers": [(b"host", b"notes.example"), *headers],
            "scheme": "wss",
            "server": ("notes.example", 443),
        }
        await guarded(scope, receive, send)
        return sent

    assert await handshake([]) == [{"type": "websocket.close", "code": 1008}]
    assert reached == []
    token = issuer.token()
    assert await handshake([(b"authorization", f"Bearer {token}".encode())]) == []
    assert reached == ["user-1"]
