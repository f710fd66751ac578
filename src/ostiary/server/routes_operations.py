"""What operators point their tools at: `GET /metrics` (Prometheus) and `GET /health`."""

from __future__ import annotations

import hmac
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import metrics as metrics_registry
from .openapi import openapi_json
from .runtime import runtime

NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
HEALTH_RETRY_AFTER: Final = "5"
METRICS_CHALLENGE: Final = 'Bearer realm="ostiary-metrics"'
OPENAPI_CACHE: Final = "public, max-age=300"


async def metrics(request: Request) -> Response:
    rt = runtime(request)
    token = rt.settings.metrics_token
    if token is not None and not _is_bearer(request, token.get_secret_value()):
        return JSONResponse(
            {
                "error": "invalid_token",
                "error_description": "GET /metrics needs the bearer token of OSTIARY_METRICS_TOKEN",
            },
            status_code=401,
            headers={**NO_STORE, "WWW-Authenticate": METRICS_CHALLENGE},
        )
    return Response(
        metrics_registry.render(),
        media_type=metrics_registry.CONTENT_TYPE,
        headers=NO_STORE,
    )


def _is_bearer(request: Request, expected: str) -> bool:
    values = request.headers.getlist("authorization")
    if len(values) != 1:
        return False
    scheme, _, credentials = values[0].partition(" ")
    if scheme.lower() != "bearer":
        return False
    # RFC 6750 §2.1 names the scheme case-insensitively; the token itself compares in constant time
    return hmac.compare_digest(credentials.strip().encode("utf-8"), expected.encode("utf-8"))


async def health(request: Request) -> Response:
    """200 when the database answered within `OSTIARY_HEALTH_TIMEOUT` a check made at most
    `OSTIARY_HEALTH_INTERVAL` ago (one check per interval per process: `health.py`), else 503."""
    if not await runtime(request).health.is_healthy():
        return JSONResponse(
            {"status": "unavailable", "database": "unavailable"},
            status_code=503,
            headers={**NO_STORE, "Retry-After": HEALTH_RETRY_AFTER},
        )
    return JSONResponse({"status": "ok", "database": "ok"}, headers=NO_STORE)


async def openapi(request: Request) -> Response:
    rt = runtime(request)
    return Response(
        openapi_json(rt.ctx.config.issuer),
        media_type="application/json",
        headers={"Cache-Control": OPENAPI_CACHE},
    )
