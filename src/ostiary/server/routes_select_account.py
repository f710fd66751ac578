"""The account chooser's decision (`prompt=select_account`, OpenID Connect Core §3.1.2.1):
POST /select-account with `decision=continue` (as the signed-in person) or `decision=switch`
(the login page, to sign in with another account)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ostiary.oauth.authorize import AuthorizationRedirectError
from ostiary.oauth.errors import InvalidRequest, OAuthError

from . import render
from .forms import form_params, single
from .routes_authorize import (
    ACCOUNT_PAGE,
    ExpiredForm,
    account_page,
    account_purpose,
    check_request,
    continue_authorization,
    login_page,
    must_sign_in,
    open_pending,
)
from .routes_login import EXPIRED_FORM
from .runtime import runtime


async def select_account(request: Request) -> Response:
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
    if not rt.csrf.is_valid(request, account_purpose(user), token):
        return render.error_page(rt.pages, ExpiredForm(EXPIRED_FORM), status=403)
    if decision == "switch":
        return login_page(request, rt, req, params)
    if decision != "continue":
        return render.error_page(rt.pages, InvalidRequest("decision must be continue or switch"))
    if must_sign_in(req, session, rt.now(), rt.ctx.config):
        return login_page(request, rt, req, params)
    if open_pending(rt, pending, shown_to=session, page=ACCOUNT_PAGE) is None:
        # shown to another sign-in (someone signed in meanwhile): ask this one again
        return account_page(request, rt, req, params, user, auth_time=session.auth_time)
    return await continue_authorization(
        request, rt, req, params, user, session=session, after_post=True
    )
