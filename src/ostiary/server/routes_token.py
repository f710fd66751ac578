"""The back-channel endpoints: token (RFC 6749 §3.2), revocation (RFC 7009) and
introspection (RFC 7662). Each hands the raw request to the core and writes its answer.

They are plain ASGI apps rather than Starlette request handlers: a token request is the
server's hottest path, and Starlette's `Request`, `Response` and five middleware layers cost
more than minting an ES256 token. The app (`app.py`) sends a POST to these paths straight
here; so each does for itself what those layers do for the other routes: refuse an oversized
body before parsing it, set the security headers, and answer an unexpected error with a
plain 500. Other methods reach them through Starlette's router, which answers 405.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

import orjson
from starlette.types import Receive, Scope, Send

from ostiary.oauth.context import Context
from ostiary.oauth.errors import InvalidRequest, OAuthError
from ostiary.oauth.introspection import handle_introspection_request
from ostiary.oauth.metadata import INTROSPECTION_PATH, REVOCATION_PATH, TOKEN_PATH
from ostiary.oauth.revocation import handle_revocation_request
from ostiary.oauth.token_endpoint import TokenRequest, TokenResponse, handle_token_request
from ostiary.oauth.token_request import error_response

from . import metrics
from .body_limit import read_body
from .cors import client_headers
from .forms import Params, is_form_content_type, parse_urlencoded
from .runtime import Runtime
from .security_headers import default_headers

log = logging.getLogger("ostiary.server")

Handler = Callable[[TokenRequest, Context], Awaitable[TokenResponse]]

_DESCRIPTIONS: Final = {
    400: "the request is malformed",
    413: "the request body is too large",
}


class BackChannelEndpoint:
    """One back-channel endpoint as an ASGI app: POST, form body in, JSON out.

    `path` labels its metrics; `counts_tokens` counts each success by its grant type; `cors`
    lets registered clients' pages read the answer (cors.py)."""

    def __init__(
        self, handler: Handler, path: str, *, counts_tokens: bool = False, cors: bool = False
    ) -> None:
        self.handler = handler
        self.path = path
        self.counts_tokens = counts_tokens
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        rt: Runtime = scope["app"].state.runtime
        request: TokenRequest | None = None
        origins: list[str] = []
        cors: dict[str, str] | None = None
        try:
            request = await _token_request(scope, receive, rt.settings.max_request_size, origins)
            if request is None:
                return  # the client went away before its body arrived
            response = await self.handler(request, rt.ctx)
        except _Refused as refused:
            response = _error(InvalidRequest(_DESCRIPTIONS[refused.status]), status=refused.status)
        except OAuthError as exc:
            response = _error(exc)
        except Exception:  # the last resort, as the app's own handler for every other route
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            response = _error(_ServerError("the server could not complete the request"))
        if origins and self.cors:  # only a cross-origin request pays for the lookup
            cors = await _cors(rt, origins)
        await _send(send, response, default_headers(hsts=rt.hsts), cors)
        if response.status >= 400:
            metrics.count_oauth_error(str(response.body.get("error", "")))
            if response.status == 429:
                metrics.count_rate_limited(response.limit or "unnamed")
        elif self.counts_tokens and request is not None:
            # a success, so grant_type is one the server knows: a bounded label
            metrics.count_token_issued(request.form["grant_type"][0])
        metrics.observe(self.path, response.status, time.perf_counter() - started)


token = BackChannelEndpoint(handle_token_request, TOKEN_PATH, counts_tokens=True, cors=True)
revoke = BackChannelEndpoint(handle_revocation_request, REVOCATION_PATH, cors=True)
# no CORS: introspection is for resource servers with a client secret, never for a browser
introspect = BackChannelEndpoint(handle_introspection_request, INTROSPECTION_PATH)


async def _cors(rt: Runtime, origins: list[str]) -> dict[str, str]:
    """CORS headers for the answer, errors included, so a client's page can read why."""
    try:
        allowed = len(origins) == 1 and await rt.origins.allows(origins[0])
    except Exception:  # the answer is made already: unreadable to the page, never lost
        log.exception("could not read the registered origins")
        allowed = False
    return client_headers(origins[0]) if allowed else {"Vary": "Origin"}


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


async def _token_request(
    scope: Scope, receive: Receive, max_size: int, origins: list[str]
) -> TokenRequest | None:
    """The request as the core reads it; `InvalidRequest` for what cannot be a form at all.
    Its `Origin` headers are added to `origins`."""
    authorization: list[str] = []
    content_type: list[str] = []
    dpop: list[str] = []
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization.append(value.decode("latin-1"))
        elif name == b"content-type":
            content_type.append(value.decode("latin-1"))
        elif name == b"dpop":
            dpop.append(value.decode("latin-1"))
        elif name == b"origin":
            origins.append(value.decode("latin-1"))
    body = await read_body(scope, receive, max_size)
    if isinstance(body, int):
        raise _Refused(body)
    if body is None:
        return None
    if len(authorization) > 1:
        raise InvalidRequest("the Authorization header must not be repeated")
    if len(content_type) > 1:
        raise InvalidRequest("the Content-Type header must not be repeated")
    # the core refuses any other content type; only a form body is worth decoding
    form: Params = (
        parse_urlencoded(body) if content_type and is_form_content_type(content_type[0]) else {}
    )
    client = scope.get("client")
    return TokenRequest(
        form=form,
        authorization=authorization[0] if authorization else None,
        content_type=content_type[0] if content_type else None,
        address=client[0] if client else "unknown",
        dpop=dpop,  # RFC 9449: the core checks the proof
    )


def _error(error: OAuthError, *, status: int | None = None) -> TokenResponse:
    shaped = error_response(error)
    if status is None:
        return shaped
    return TokenResponse(status=status, body=shaped.body, headers=shaped.headers)


async def _send(
    send: Send,
    response: TokenResponse,
    secure_headers: tuple[tuple[bytes, bytes], ...],
    cors: dict[str, str] | None = None,
) -> None:
    body = orjson.dumps(response.body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers.extend(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.items()
    )
    if cors:
        headers.extend(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in cors.items()
        )
    own = {name for name, _ in headers}
    headers.extend(header for header in secure_headers if header[0] not in own)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _ServerError(OAuthError):
    error = "server_error"
    status = 500
    redirectable = False
