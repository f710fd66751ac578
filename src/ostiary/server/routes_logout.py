"""RP-Initiated Logout 1.0 at `/logout` (the `end_session_endpoint`): GET, or POST as §2
allows, checked by the core (`oauth.logout`).

With an `id_token_hint` naming the signed-in user (or nobody signed in) the session ends at
once; otherwise the person is asked first (§2: a logout request must not sign out someone
the client did not name), on a page whose form is bound to the browser (CSRF) and carries
the request sealed, so it cannot be edited on the way. When the session ends, the clients
that took part in it learn so in the background (Back-Channel Logout 1.0) and, those that
registered a front-channel logout URI, through iframes of the signed-out page (Front-Channel
Logout 1.0).
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from ostiary.oauth.errors import OAuthError
from ostiary.oauth.frontchannel_logout import FrontChannelLogout, frontchannel_logouts
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
REFRESH_DELAY: Final = 1  # seconds after the front-channel iframes have loaded


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
    frames: list[FrontChannelLogout] = []
    if signed_in is not None:
        # over everywhere, not only in this browser; Back-Channel Logout 1.0: the clients of
        # the session are sent logout tokens in the background, never delaying this answer
        session, user = signed_in
        await rt.end_session(session)
        if session.login is not None:
            frames = await frontchannel_logouts(session.login, rt.ctx)
        detail: dict[str, object] = {"via": "rp-initiated logout"}
        if frames:
            detail["frontchannel"] = [frame.client_id for frame in frames]
        await rt.ctx.store.audit.record(
            AuditEvent(
                event="session.ended",
                at=rt.now(),
                client_id=req.client.client_id if req.client is not None else None,
                user_id=user.user_id,
                address=client_address(request),
                detail=detail,
            )
        )
    response = _signed_out(rt, logged_out_redirect(req), frames, after_post=after_post)
    rt.cookies.clear(response, SESSION_COOKIE)
    return response


def _signed_out(
    rt: Runtime, location: str | None, frames: list[FrontChannelLogout], *, after_post: bool
) -> Response:
    """The answer once the session is over: to the client's post_logout_redirect_uri, or
    the signed-out page.

    Front-Channel Logout 1.0 §3: with clients to sign out in this browser, the page carries
    one hidden iframe for each, its CSP letting frames load from their origins alone. To
    continue to the client, the page refreshes itself to the redirect URI `REFRESH_DELAY`
    seconds after it has loaded, iframes included (HTML's refresh "comes due" only then),
    and offers a link for a person who does not wait or whose browser does not refresh.
    No script is needed.
    """
    if not frames:
        if location is not None:
            return render.redirect(location, after_post=after_post)
        return rt.pages.render(
            "signed_out.html",
            {"title": "Signed out", "message": "You are signed out of this server."},
        )
    return rt.pages.render(
        "frontchannel_logout.html",
        {
            "title": "Signed out",
            "frames": frames,
            "continue_to": location,
            "refresh_delay": REFRESH_DELAY,
        },
        frame_targets=[frame.url for frame in frames],
    )
