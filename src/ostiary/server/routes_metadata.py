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
from .runtime import runtime

# Short enough that a newly published key reaches verifiers well inside the rotation
# overlap; long enough that a busy resource server does not ask every second.
METADATA_CACHE: Final = "public, max-age=300"


async def metadata(request: Request) -> Response:
    rt = runtime(request)
    return render.json_body(authorization_server_metadata(rt.ctx.config), cache=METADATA_CACHE)


async def openid_provider_metadata(request: Request) -> Response:
    rt = runtime(request)
    return render.json_body(openid_configuration(rt.ctx.config), cache=METADATA_CACHE)


async def jwks(request: Request) -> Response:
    rt = runtime(request)
    return render.json_body(await jwks_document(rt.ctx), cache=METADATA_CACHE)
