"""The FastAPI app `bench/protect_speed.py` serves: one endpoint, four guards.

- `/open`    the endpoint with no guard (the ceiling);
- `/protect` behind `ostiary.protect` (`Depends(api.require_scopes("notes:read"))`);
- `/pyjwt`   behind a hand-written PyJWT dependency doing the same checks with a key it
  already holds (typ at+jwt, ES256 only, iss, aud, exp with leeway, required claims, scope);
- `/dpop`    behind `ostiary.protect` with DPoP required (a fresh proof per request);
- `/middleware` behind `ostiary.protect`'s ASGI middleware (`ProtectMiddleware`), the claims
  read from `request.state`. The middleware wraps the whole app, so every other path passes
  it too, as a public path: one set lookup and one more ASGI call, under 1 µs a request.

Configured by `BENCH_ISSUER` (the stand-in issuer the benchmark serves) and
`BENCH_PUBLIC_JWK` (the issuer's public key as JWK JSON, for the PyJWT guard).
"""

# mypy: disable-error-code="import-untyped"
from __future__ import annotations

import json
import os
from typing import Any

import jwt as pyjwt
from fastapi import Depends, FastAPI, HTTPException, Request

from ostiary.protect import ProtectMiddleware, ResourceServer

AUDIENCE = "https://notes.example"
ISSUER = os.environ["BENCH_ISSUER"]
PYJWT_KEY = pyjwt.PyJWK(json.loads(os.environ["BENCH_PUBLIC_JWK"])).key
REQUIRED = ["exp", "iat", "iss", "aud", "sub", "client_id", "jti"]

api = ResourceServer(issuer=ISSUER, audience=AUDIENCE)
dpop_api = ResourceServer(issuer=ISSUER, audience=AUDIENCE, dpop_required=True)
app = FastAPI()
app.add_middleware(
    ProtectMiddleware,
    resource_server=api,
    scopes=["notes:read"],
    public_paths=["/open", "/protect", "/pyjwt", "/dpop"],
)
protect_guard = api.require_scopes("notes:read")
dpop_guard = dpop_api.require_scopes("notes:read")


async def pyjwt_guard(request: Request) -> dict[str, Any]:
    """What a careful hand-written guard does with PyJWT."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, headers={"WWW-Authenticate": "Bearer"})
    try:
        if pyjwt.get_unverified_header(token).get("typ") != "at+jwt":
            raise pyjwt.InvalidTokenError("typ")
        claims: dict[str, Any] = pyjwt.decode(
            token,
            PYJWT_KEY,
            algorithms=["ES256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=10,
            options={"require": REQUIRED},
        )
    except pyjwt.PyJWTError:
        raise HTTPException(
            401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None
    if "notes:read" not in str(claims.get("scope", "")).split():
        raise HTTPException(403, headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})
    return claims


@app.get("/open")
async def open_endpoint() -> dict[str, str]:
    return {"sub": "anyone"}


# Routes are matched in order, about 1 µs a route: the guarded ones come right after the
# unprotected one, so none of them is measured in a better place than the ceiling.
@app.get("/middleware")
async def middleware_endpoint(request: Request) -> dict[str, str]:
    return {"sub": request.state.token_claims["sub"]}


@app.get("/protect")
async def protect_endpoint(claims: dict[str, Any] = Depends(protect_guard)) -> dict[str, str]:
    return {"sub": claims["sub"]}


@app.get("/pyjwt")
async def pyjwt_endpoint(claims: dict[str, Any] = Depends(pyjwt_guard)) -> dict[str, str]:
    return {"sub": claims["sub"]}


@app.get("/dpop")
async def dpop_endpoint(claims: dict[str, Any] = Depends(dpop_guard)) -> dict[str, str]:
    return {"sub": claims["sub"]}
