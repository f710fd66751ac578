"""The consent decision: POST /consent with `decision=allow` or `decision=deny`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ostiary.oauth.authorize import AuthorizationRedirectError, approve, deny
from ostiary.oauth.errors import InvalidRequest, OAuthError

from . import render
from .forms import form_params, single
from .routes_authorize import (
    ExpiredForm,
    check_request,
    consent_page,
    consent_purpose,
    login_page,
    must_sign_in,
    open_pending,
)
from .routes_login import EXPIRED_FORM
from .runtime import runtime


async def consent(request: Request) -> Response:
    rt = runtime(request)
    try:
        form = await form_params(request)
        pending, token, decision = (
            single(form, "pending"),
            single(form, "csrf_token"),
            single(form, "decision"),
        )
    except OAuthError as exc:
        return render.error_page(rt.pages, exc)
    params = open_pending(rt, pending)
    if params is None:
        return render.error_page(rt.pages, ExpiredForm(EXPIRED_FORM))
    try:
        req = await check_request(rt, params)
    except (OAuthError, AuthorizationRedirectError) as exc:
        return render.authorization_error(rt.pages, exc, after_post=True)
    signed_in = await rt.signed_in(request)
    if signed_in is None:  # the session ended while the page was open: sign in again
        return login_page(request, rt, req, params)
    session, user = signed_in
    if not rt.csrf.is_valid(request, consent_purpose(user), token):
        return render.error_page(rt.pages, ExpiredForm(EXPIRED_FORM), status=403)
    if open_pending(rt, pending, shown_to=session) is None:
        # not the consent page of this sign-in (the login page's copy, or a sign-in since):
        # ask again what /authorize would ask, never approve
        if must_sign_in(req, session, rt.now(), rt.ctx.config):
            return login_page(request, rt, req, params)
        return consent_page(request, rt, req, params, user, auth_time=session.auth_time)
    if decision == "allow":
        location = await approve(
            req, user.user_id, auth_time=session.auth_time, ctx=rt.ctx, session=session.login
        )
    elif decision == "deny":
        location = deny(req)
    else:
        return render.error_page(rt.pages, InvalidRequest("decision must be allow or deny"))
    return render.to_client(
        rt.pages, location, req.redirect_uri, response_mode=req.response_mode, after_post=True
    )
