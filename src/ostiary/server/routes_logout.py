"""RP-Initiated Logout 1.0 at `/logout` (the `end_session_endpoint`): GET, or POST as §2
allows, checked by the core (`oauth.logout`).

With an `id_token_hint` naming the signed-in user (or nobody signed in) the session ends at
once; otherwise the person is asked first (§2: a logout request must not sign out someone
the client did not name), on a page whose form is bound to the browser (CSRF) and carries
the request sealed, so it cannot be edited on the way.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from ostiary.oauth.errors import OAuthError
from ostiary.oauth.logout import (
    LogoutRequest,
    logged_out_redirect,
    parse_logout_request,
)
from ostiary.oauth.models import AuditEvent

from . import render
from .forms import Params, form_params, query_params, single
from .routes_authorize import ExpiredForm
from .routes_login import EXPIRED_FORM
from .runtime import Runtime, client_address, runtime
from .sessions import SESSION_COOKIE

PENDING_LOGOUT: Final = "pending logout"
PENDING_TTL: Final = 10 * 60


async def logout(request: Request) -> Response:
    rt = runtime(request)
    after_post = request.method == "POST"
    try:
        params = await form_params(request) if after_post else query_params(request)
        if after_post and "pending" in params:
            return await _confirmed(request, rt, params)
        req = await parse_logout_request(params, rt.ctx)
    except OAuthError as exc:
        return render.error_page(rt.pages, exc)
    signed_in = await rt.signed_in(request)
    if signed_in is None or req.is_for(signed_in[1].user_id, rt.ctx):
        return await _end_session(request, rt, req, after_post=after_post)
    csrf = rt.csrf.issue(request, "logout")
    sealed = rt.signer.sign(PENDING_LOGOUT, {"params": params}, now=rt.now(), ttl=PENDING_TTL)
    page = rt.pages.render(
        "logout.html",
        {
            "title": "Sign out?",
            "username": signed_in[1].username,
            "client_name": req.client.name if req.client is not None else None,
            "csrf_token": csrf.token,
            "pending": sealed,
        },
    )
    csrf.set_cookie(page, rt.cookies)
    return page


async def _confirmed(request: Request, rt: Runtime, form: Params) -> Response:
    if not rt.csrf.is_valid(request, "logout", single(form, "csrf_token")):
        return render.error_page(rt.pages, ExpiredForm(EXPIRED_FORM), status=403)
    data = rt.signer.verify(PENDING_LOGOUT, single(form, "pending"), now=rt.now())
    params: Any = None if data is None else data.get("params")
    if not isinstance(params, dict):
        return render.error_page(rt.pages, ExpiredForm(EXPIRED_FORM))
    req = await parse_logout_request(params, rt.ctx)  # checked again: it may have changed
    if single(form, "decision") != "logout":
        return rt.pages.render(
            "signed_out.html",
            {"title": "Still signed in", "message": "You are still signed in."},
        )
    return await _end_session(request, rt, req, after_post=True)


async def _end_session(
    request: Request, rt: Runtime, req: LogoutRequest, *, after_post: bool
) -> Response:
    signed_in = await rt.signed_in(request)
    location = logged_out_redirect(req)
    response = (
        render.redirect(location, after_post=after_post)
        if location is not None
        else rt.pages.render(
            "signed_out.html",
            {"title": "Signed out", "message": "You are signed out of this server."},
        )
    )
    rt.cookies.clear(response, SESSION_COOKIE)
    if signed_in is not None:
        # over everywhere, not only in this browser; Back-Channel Logout 1.0: the clients of
        # the session are sent logout tokens in the background, never delaying this answer
        await rt.end_session(signed_in[0])
        await rt.ctx.store.audit.record(
            AuditEvent(
                event="session.ended",
                at=rt.now(),
                client_id=req.client.client_id if req.client is not None else None,
                user_id=signed_in[1].user_id,
                address=client_address(request),
                detail={"via": "rp-initiated logout"},
            )
        )
    return response
