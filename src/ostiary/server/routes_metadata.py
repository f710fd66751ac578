"""Discovery: authorization server metadata (RFC 8414), OpenID Provider metadata (OpenID
Connect Discovery 1.0) and the JWKS (RFC 7517 §5)."""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from ostiary.oauth.metadata import (
    authorization_server_metadata,
    jwks_document,
    openid_configuration,
)

from . import render
from .cors import PUBLIC_HEADERS, preflight
from .runtime import runtime

# Short enough that a newly published key reaches verifiers well inside the rotation
# overlap; long enough that a busy resource server does not ask every second.
METADATA_CACHE: Final = "public, max-age=300"


async def metadata(request: Request) -> Response:
    rt = runtime(request)
    document = authorization_server_metadata(rt.ctx.config)
    return render.json_body(document, cache=METADATA_CACHE, headers=PUBLIC_HEADERS)


async def openid_provider_metadata(request: Request) -> Response:
    rt = runtime(request)
    document = openid_configuration(rt.ctx.config)
    return render.json_body(document, cache=METADATA_CACHE, headers=PUBLIC_HEADERS)


async def jwks(request: Request) -> Response:
    rt = runtime(request)
    document = await jwks_document(rt.ctx)
    return render.json_body(document, cache=METADATA_CACHE, headers=PUBLIC_HEADERS)


async def cors_preflight(request: Request) -> Response:
    """`OPTIONS` on the discovery, JWKS, token, revocation and UserInfo paths (cors.py)."""
    return await preflight(request, runtime(request).origins)
