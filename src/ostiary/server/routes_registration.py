"""Dynamic client registration (RFC 7591) and management (RFC 7592), answered by the core."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ostiary.oauth.registration import (
    RegistrationRequest,
    RegistrationResponse,
    handle_registration_request,
)

from .runtime import client_address, runtime


async def register_client(request: Request) -> Response:
    return await _answer(request, None)


async def manage_client(request: Request) -> Response:
    return await _answer(request, request.path_params["client_id"])


async def _answer(request: Request, client_id: str | None) -> Response:
    rt = runtime(request)
    authorization = request.headers.getlist("authorization")
    content_type = request.headers.getlist("content-type")
    req = RegistrationRequest(
        method=request.method,
        client_id=client_id,
        # a repeated header is as good as none: the core then refuses the request
        authorization=authorization[0] if len(authorization) == 1 else None,
        content_type=content_type[0] if len(content_type) == 1 else None,
        body=await request.body() if request.method in ("POST", "PUT") else b"",
        address=client_address(request),
    )
    response = await handle_registration_request(req, rt.ctx)
    if response.status < 300 and request.method != "GET":
        rt.origins.forget()  # a client's redirect URIs changed: CORS reads them again
    return _render(response)


def _render(response: RegistrationResponse) -> Response:
    if response.body is None:
        return Response(status_code=response.status, headers=response.headers)
    return JSONResponse(response.body, status_code=response.status, headers=response.headers)
