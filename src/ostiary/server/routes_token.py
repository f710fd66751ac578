"""The back-channel endpoints: token (RFC 6749 §3.2), revocation (RFC 7009) and
introspection (RFC 7662). Each hands the raw request to the core and renders its answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from ostiary.oauth.context import Context
from ostiary.oauth.errors import InvalidRequest, OAuthError
from ostiary.oauth.introspection import handle_introspection_request
from ostiary.oauth.revocation import handle_revocation_request
from ostiary.oauth.token_endpoint import TokenRequest, TokenResponse, handle_token_request

from . import metrics, render
from .forms import Params, is_form, parse_urlencoded
from .runtime import client_address, runtime

Handler = Callable[[TokenRequest, Context], Awaitable[TokenResponse]]


async def _token_request(request: Request) -> TokenRequest:
    """The request as the core reads it; `InvalidRequest` for what cannot be a form at all."""
    authorization = request.headers.getlist("authorization")
    if len(authorization) > 1:
        raise InvalidRequest("the Authorization header must not be repeated")
    content_type = request.headers.getlist("content-type")
    if len(content_type) > 1:
        raise InvalidRequest("the Content-Type header must not be repeated")
    # the core refuses any other content type; only a form body is worth decoding
    form: Params = parse_urlencoded(await request.body()) if is_form(request) else {}
    return TokenRequest(
        form=form,
        authorization=authorization[0] if authorization else None,
        content_type=content_type[0] if content_type else None,
        address=client_address(request),
        dpop=request.headers.getlist("dpop"),  # RFC 9449: the core checks the proof
    )


async def _answer(request: Request, handler: Handler) -> Response:
    rt = runtime(request)
    try:
        token_request = await _token_request(request)
    except OAuthError as exc:
        return render.json_error(exc)
    return render.token_response(await handler(token_request, rt.ctx))


async def token(request: Request) -> Response:
    rt = runtime(request)
    try:
        token_request = await _token_request(request)
    except OAuthError as exc:
        return render.json_error(exc)
    answer = await handle_token_request(token_request, rt.ctx)
    if answer.status == 200:  # so grant_type is one the server knows: a bounded label
        metrics.count_token_issued(token_request.form["grant_type"][0])
    return render.token_response(answer)


async def revoke(request: Request) -> Response:
    return await _answer(request, handle_revocation_request)


async def introspect(request: Request) -> Response:
    return await _answer(request, handle_introspection_request)
