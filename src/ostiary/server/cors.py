"""CORS (the Fetch standard's CORS protocol) for browser-based clients.

Discovery documents and the JWKS are public: any origin may read them
(`Access-Control-Allow-Origin: *`, never with credentials). The token, UserInfo and revocation
endpoints answer CORS, preflight included, only for the exact origin of a registered client's
redirect URI: a single-page app registered at `https://app.example/callback` may call them
from `https://app.example`, and no page served elsewhere (another port, http instead of https,
the opaque `null` origin of a sandboxed frame or a file) is told it may read the answer. No
endpoint allows credentials: none of them reads a cookie, so a cross-origin page gains
nothing a server-side script could not do. Introspection answers no CORS at all: it is for
resource servers holding a client secret, which a browser must not hold (RFC 7662 §2.1).

The allowed origins are read from every client's redirect URIs once per `ORIGINS_TTL` in each
process, and at once after this process registers, changes or deletes a client; an origin
that is not allowed never causes a read, so hostile preflights cost a set lookup.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable
from typing import Final
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from ostiary.oauth.metadata import (
    JWKS_PATH,
    METADATA_PATH,
    OPENID_CONFIGURATION_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    USERINFO_PATH,
)
from ostiary.oauth.store import ClientStore

ORIGINS_TTL: Final = 30.0  # seconds a process keeps the origin set before reading it again
MAX_AGE: Final = "600"  # how long a browser may reuse a preflight's answer
PUBLIC_PATHS: Final = frozenset({METADATA_PATH, OPENID_CONFIGURATION_PATH, JWKS_PATH})
CLIENT_METHODS: Final = {TOKEN_PATH: "POST", REVOCATION_PATH: "POST", USERINFO_PATH: "GET, POST"}
ALLOWED_HEADERS: Final = "Authorization, Content-Type, DPoP"
# what a browser app may read besides the safelisted headers: a bearer challenge (RFC 6750
# §3), the DPoP nonce (RFC 9449 §8) and when to try again
EXPOSED_HEADERS: Final = "WWW-Authenticate, DPoP-Nonce, Retry-After"
PUBLIC_HEADERS: Final = {"Access-Control-Allow-Origin": "*"}
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# an ASCII serialized origin as browsers send it (Fetch §3.2.5): no path, lower case
_ORIGIN = re.compile(r"https?://[a-z0-9.\-]+(:[0-9]{1,5})?|https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?")


def origin_of(uri: str) -> str | None:
    """The serialized origin of an http(s) URI (RFC 6454 §6.1), or None for any other."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    origin = f"{scheme}://{host}"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        origin += f":{port}"
    return origin if _ORIGIN.fullmatch(origin) else None


def registered_origins(redirect_uris: Iterable[str]) -> frozenset[str]:
    """The origins of these redirect URIs; private-use schemes (native apps) have none."""
    return frozenset(o for o in map(origin_of, redirect_uris) if o is not None)


class ClientOrigins:
    """The origins of every registered client's redirect URIs, kept per process."""

    def __init__(
        self,
        clients: ClientStore,
        *,
        ttl: float = ORIGINS_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self._ttl = ttl
        self._clock = clock
        self._origins: frozenset[str] = frozenset()
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def allows(self, origin: str | None) -> bool:
        """True when `origin` is exactly the origin of some client's redirect URI."""
        if origin is None or _ORIGIN.fullmatch(origin) is None:
            return False  # `null`, a path, junk: refused before anything is read
        if self._is_stale():
            async with self._lock:
                if self._is_stale():
                    clients = await self._clients.list()
                    self._origins = frozenset().union(
                        *(registered_origins(c.redirect_uris) for c in clients)
                    )
                    self._read_at = self._clock()
        return origin in self._origins

    def forget(self) -> None:
        """This process changed a client: read the origins again on the next request."""
        self._read_at = None

    def _is_stale(self) -> bool:
        return self._read_at is None or self._clock() - self._read_at >= self._ttl


def request_origin(request: Request) -> str | None:
    """The request's one `Origin` header (a repeated one counts as none)."""
    values = request.headers.getlist("origin")
    return values[0] if len(values) == 1 else None


async def client_cors(request: Request, origins: ClientOrigins) -> dict[str, str]:
    """The CORS headers for an answer at a client path: none unless the origin is allowed."""
    origin = request_origin(request)
    if origin is None:
        return {}
    if not await origins.allows(origin):
        return {"Vary": "Origin"}
    return client_headers(origin)


def client_headers(origin: str) -> dict[str, str]:
    """The headers of an answer a registered client's page at `origin` may read."""
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
        "Vary": "Origin",
    }


async def preflight(request: Request, origins: ClientOrigins) -> Response:
    """`OPTIONS` on a CORS path: a preflight answered for allowed origins, and a plain
    204 naming the methods otherwise (no CORS header: the browser then refuses)."""
    path = request.url.path
    methods = "GET" if path in PUBLIC_PATHS else CLIENT_METHODS[path]
    headers = {"Allow": f"OPTIONS, {methods}", "Cache-Control": "no-store"}
    requested = request.headers.get("access-control-request-method")
    origin = request_origin(request)
    if path in PUBLIC_PATHS:
        headers |= PUBLIC_HEADERS | {"Access-Control-Allow-Methods": "GET"}
        headers["Access-Control-Max-Age"] = MAX_AGE
    elif origin is not None and requested in methods.split(", ") and await origins.allows(origin):
        headers |= client_headers(origin)
        headers["Access-Control-Allow-Methods"] = methods
        headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        headers["Access-Control-Max-Age"] = MAX_AGE
    else:
        headers["Vary"] = "Origin"
    return Response(status_code=204, headers=headers)
