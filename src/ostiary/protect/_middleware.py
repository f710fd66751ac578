"""`ProtectMiddleware`: every HTTP request to the wrapped ASGI app needs a valid token."""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ._errors import InvalidToken, ProtectError
from ._resource_server import STATE_KEY, ResourceServer, header_credentials, require_scopes


class ProtectMiddleware:
    """ASGI middleware for any ASGI app (Starlette, FastAPI, Litestar, ...).

    ```python
    app.add_middleware(ProtectMiddleware, resource_server=api, scopes=["notes:read"])
    ```

    The verified claims are at `request.state.token_claims` (ASGI `scope["state"]`), where
    `ResourceServer.require_scopes` finds them too. Paths in `public_paths` pass unchecked.
    A WebSocket handshake needs a token as well; a refused one is closed before it is
    accepted (the server answers 403).
    Tokens come from the Authorization header (or the query, when enabled); the form body is
    left to the app, so it is never read here.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        resource_server: ResourceServer,
        scopes: Iterable[str] = (),
        public_paths: Iterable[str] = (),
    ) -> None:
        if resource_server.token_in_form:
            raise ValueError(
                "ProtectMiddleware never reads the body: use require_scopes for form tokens"
            )
        self.app = app
        self.resource_server = resource_server
        self.scopes = tuple(scopes)
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        server = self.resource_server
        is_websocket = scope["type"] == "websocket"
        request: Request | None = None
        try:
            # A Bearer token in the header (the usual case) needs no Request object at all
            found = None if server.token_in_query else header_credentials(scope)
            if found is None or found.scheme == "DPoP":
                request = Request(
                    {**scope, "type": "http", "method": "GET"} if is_websocket else scope
                )
                found = await server.credentials(request)
            if found is None:
                raise InvalidToken()  # no credentials: the bare challenge (RFC 6750 §3.1)
            method = "GET" if is_websocket else scope["method"]
            # a DPoP proof names the request's URL: `request` was made for it above
            dpop = request is not None and found.scheme == "DPoP"
            url = server.request_url(request) if request is not None and dpop else None
            claims = await server.verify(found, method=method, url=url)
            require_scopes(claims, self.scopes)
        except ProtectError as exc:
            if scope["type"] == "websocket":
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": 1008})  # policy violation
                return
            await _refuse(server, exc, send)
            return
        # The server gives each request a state dict of its own (ASGI lifespan state is
        # copied per request), where Starlette's `request.state` writes too.
        state = scope.get("state")
        if not isinstance(state, dict):
            state = scope["state"] = {}
        state[STATE_KEY] = claims
        await self.app(scope, receive, send)


async def _refuse(server: ResourceServer, error: ProtectError, send: Send) -> None:
    body: dict[str, str] = {"error": error.error}
    if error.description:
        body["error_description"] = error.description
    content = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        (b"cache-control", b"no-store"),
    ]
    headers += [
        (name.lower().encode(), value.encode()) for name, value in server.headers(error).items()
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
