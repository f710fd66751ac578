"""The UserInfo endpoint (OpenID Connect Core §5.3): GET and POST, answered by the core."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ostiary.oauth.errors import OAuthError
from ostiary.oauth.token_request import TokenRequest
from ostiary.oauth.userinfo import (
    JWT_CONTENT_TYPE,
    UserInfoResponse,
    bearer_error_response,
    handle_userinfo_request,
    invalid_request,
)

from .cors import client_cors
from .forms import Params, is_form, parse_urlencoded
from .runtime import client_address, runtime


async def userinfo(request: Request) -> Response:
    response = await _userinfo(request)
    # a registered single-page app may read the answer, errors included (cors.py)
    response.headers.update(await client_cors(request, runtime(request).origins))
    return response


async def _userinfo(request: Request) -> Response:
    rt = runtime(request)
    authorization = request.headers.getlist("authorization")
    content_type = request.headers.getlist("content-type")
    form: Params = {}
    if request.method == "POST" and is_form(request):
        try:
            form = parse_urlencoded(await request.body())
        except OAuthError as exc:
            return _render(bearer_error_response(invalid_request(exc.description)))
    if len(authorization) > 1 or len(content_type) > 1:
        refused = invalid_request("the Authorization and Content-Type headers must be single")
        return _render(bearer_error_response(refused))
    req = TokenRequest(
        form=form,
        authorization=authorization[0] if authorization else None,
        content_type=content_type[0] if content_type else None,
        address=client_address(request),
    )
    return _render(await handle_userinfo_request(req, rt.ctx, method=request.method))


def _render(response: UserInfoResponse) -> Response:
    if response.jwt is not None:
        return Response(
            response.jwt,
            status_code=response.status,
            headers=response.headers,
            media_type=JWT_CONTENT_TYPE,
        )
    if response.body is None:
        return Response(status_code=response.status, headers=response.headers)
    return JSONResponse(response.body, status_code=response.status, headers=response.headers)
