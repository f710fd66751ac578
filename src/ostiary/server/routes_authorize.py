"""The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1): GET, and POST as
OpenID Connect Core §3.1.2.1 allows.

The journey: check the request (`oauth.authorize`), then sign in (`routes_login`), then
consent unless remembered (`routes_consent`), then redirect with a code. While the person
types, the request's parameters travel in a signed, short-lived hidden field (`pending`),
and each step checks them again with the core, so nothing a browser carries is trusted.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from ostiary.oauth.authorize import (
    AuthorizationRedirectError,
    AuthorizationRequest,
    approve,
    describe_claims,
    describe_scopes,
    is_requested_subject,
    needs_consent,
    other_subject,
    parse_authorization_request,
)
from ostiary.oauth.config import ServerConfig
from ostiary.oauth.errors import ConsentRequired, InvalidRequest, LoginRequired, OAuthError
from ostiary.oauth.models import User
from ostiary.oauth.subject import subject_for

from . import render
from .forms import Params, form_params, query_params
from .runtime import Runtime, runtime
from .sessions import Session

PENDING_PURPOSE: Final = "pending authorization"
PENDING_TTL: Final = 15 * 60  # time to type a password and read a consent page


def seal_pending(
    rt: Runtime, params: Params, *, shown_to: Session | None = None, page: str = "consent"
) -> str:
    data: dict[str, Any] = {"params": params}
    if shown_to is not None:
        # The consent page's copy names the sign-in it was shown to: a copy sealed on the
        # login page (prompt=login, max_age) cannot be posted to /consent to skip the
        # password the client asked for (OpenID Connect Core §3.1.2.1). The account
        # chooser's copy names its page too, so it cannot stand in for a consent page's.
        data["shown_to"] = _shown_to(shown_to, page)
    return rt.signer.sign(PENDING_PURPOSE, data, now=rt.now(), ttl=PENDING_TTL)


def _shown_to(session: Session, page: str) -> list[Any]:
    seen: list[Any] = [session.user_id, session.auth_time]
    return seen if page == "consent" else [*seen, page]


def open_pending(
    rt: Runtime, value: str | None, *, shown_to: Session | None = None, page: str = "consent"
) -> Params | None:
    """The parameters sealed in `value`; None when missing, forged or expired, or (with
    `shown_to`) not sealed on `page` shown to that sign-in."""
    data = rt.signer.verify(PENDING_PURPOSE, value, now=rt.now())
    params = None if data is None else data.get("params")
    if not isinstance(params, dict) or data is None:
        return None
    if shown_to is not None and data.get("shown_to") != _shown_to(shown_to, page):
        return None
    for name, values in params.items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            return None
        if not isinstance(name, str):
            return None
    return params


class ExpiredForm(InvalidRequest):
    """The page's form is too old or was not made by us: start again at the client."""

    redirectable = False


def login_page(
    request: Request,
    rt: Runtime,
    req: AuthorizationRequest | None,
    params: Params | None,
    *,
    error: str | None = None,
    username: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """The sign-in form; with a pending request it continues to it after sign-in."""
    csrf = rt.csrf.issue(request, "login")
    response = rt.pages.render(
        "login.html",
        {
            "title": "Sign in",
            "client_name": req.client.name if req is not None else None,
            "error": error,
            "username": username or (req.login_hint if req is not None else None) or "",
            "csrf_token": csrf.token,
            "pending": seal_pending(rt, params) if params is not None else None,
        },
        status=status,
        form_targets=[req.redirect_uri] if req is not None else [],
        headers=headers,
    )
    csrf.set_cookie(response, rt.cookies)
    return response


def consent_page(
    request: Request,
    rt: Runtime,
    req: AuthorizationRequest,
    params: Params,
    user: User,
    *,
    auth_time: int,
) -> Response:
    csrf = rt.csrf.issue(request, consent_purpose(user))
    response = rt.pages.render(
        "consent.html",
        {
            "title": f"Allow {req.client.name}?",
            "client_name": req.client.name,
            "username": user.username,
            "scopes": describe_scopes(req.scope, rt.ctx.config),
            "claims": describe_claims(req),
            "redirect_origin": _origin(req.redirect_uri),
            "csrf_token": csrf.token,
            "pending": seal_pending(
                rt, params, shown_to=Session(user_id=user.user_id, auth_time=auth_time)
            ),
        },
        form_targets=[req.redirect_uri],
    )
    csrf.set_cookie(response, rt.cookies)
    return response


ACCOUNT_PAGE: Final = "select_account"


def account_page(
    request: Request,
    rt: Runtime,
    req: AuthorizationRequest,
    params: Params,
    user: User,
    *,
    auth_time: int,
) -> Response:
    """`prompt=select_account` (OpenID Connect Core §3.1.2.1): continue as the signed-in
    person, or sign in with another account."""
    csrf = rt.csrf.issue(request, account_purpose(user))
    shown_to = Session(user_id=user.user_id, auth_time=auth_time)
    response = rt.pages.render(
        "select_account.html",
        {
            "title": "Choose an account",
            "client_name": req.client.name,
            "username": user.username,
            "csrf_token": csrf.token,
            "pending": seal_pending(rt, params, shown_to=shown_to, page=ACCOUNT_PAGE),
        },
        form_targets=[req.redirect_uri],
    )
    csrf.set_cookie(response, rt.cookies)
    return response


def account_purpose(user: User) -> str:
    return f"select_account|{user.user_id}"


def consent_purpose(user: User) -> str:
    # bound to the user: a consent form shown to one account cannot be posted for another
    return f"consent|{user.user_id}"


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"


def must_sign_in(
    req: AuthorizationRequest, session: Session, now: int, config: ServerConfig | None = None
) -> bool:
    """OpenID Connect Core §3.1.2.1: `prompt=login` and `max_age` ask for a fresh sign-in,
    and so does an `id_token_hint` (or a `sub` in the `claims` parameter, §5.5.1) naming
    someone other than the signed-in user."""
    if "login" in req.prompt:
        return True
    if config is not None and not is_requested_subject(req, session.user_id, config):
        return True
    if (
        req.hinted_subject is not None
        and config is not None
        and subject_for(req.client, session.user_id, config) != req.hinted_subject
    ):
        return True
    return req.max_age is not None and now - session.auth_time > req.max_age


async def continue_authorization(
    request: Request,
    rt: Runtime,
    req: AuthorizationRequest,
    params: Params,
    user: User,
    *,
    session: Session,
    after_post: bool,
) -> Response:
    """After sign-in: the consent page, or (consent remembered) the redirect with a code."""
    if not is_requested_subject(req, user.user_id, rt.ctx.config):
        # Core §5.5.1: never a code for another user than the one the request names
        return render.to_client(
            rt.pages,
            other_subject(req),
            req.redirect_uri,
            response_mode=req.response_mode,
            after_post=after_post,
        )
    auth_time = session.auth_time
    if "consent" in req.prompt or await needs_consent(req, user.user_id, rt.ctx):
        return consent_page(request, rt, req, params, user, auth_time=auth_time)
    location = await approve(
        req, user.user_id, auth_time=auth_time, ctx=rt.ctx, session=session.login
    )
    return render.to_client(
        rt.pages, location, req.redirect_uri, response_mode=req.response_mode, after_post=after_post
    )


async def check_request(rt: Runtime, params: Params) -> AuthorizationRequest:
    """The core's checks; raises `OAuthError` / `AuthorizationRedirectError`."""
    return await parse_authorization_request(params, rt.ctx)


async def authorize(request: Request) -> Response:
    rt = runtime(request)
    after_post = request.method == "POST"
    try:
        params = await form_params(request) if after_post else query_params(request)
        req = await check_request(rt, params)
    except (OAuthError, AuthorizationRedirectError) as exc:
        return render.authorization_error(rt.pages, exc, after_post=after_post)
    signed_in = await rt.signed_in(request)
    if "none" in req.prompt:
        return await _without_pages(rt, req, signed_in, after_post=after_post)
    if signed_in is None or must_sign_in(req, signed_in[0], rt.now(), rt.ctx.config):
        return login_page(request, rt, req, params)
    session, user = signed_in
    if "select_account" in req.prompt:
        return account_page(request, rt, req, params, user, auth_time=session.auth_time)
    return await continue_authorization(
        request, rt, req, params, user, session=session, after_post=after_post
    )


async def _without_pages(
    rt: Runtime,
    req: AuthorizationRequest,
    signed_in: tuple[Session, User] | None,
    *,
    after_post: bool,
) -> Response:
    """`prompt=none` (OpenID Connect Core §3.1.2.1): a code if nothing must be asked, else an
    error to the client; never a page."""
    error: OAuthError | None = None
    if signed_in is None or must_sign_in(req, signed_in[0], rt.now(), rt.ctx.config):
        error = LoginRequired("the user is not signed in")
    elif await needs_consent(req, signed_in[1].user_id, rt.ctx):
        error = ConsentRequired("the user has not approved this request")
    if error is not None or signed_in is None:
        failure = AuthorizationRedirectError(
            error or LoginRequired(),
            req.redirect_uri,
            req.state,
            issuer=req.issuer,
            response_mode=req.response_mode,
        )
        return render.authorization_error(rt.pages, failure, after_post=after_post)
    session, user = signed_in
    location = await approve(
        req, user.user_id, auth_time=session.auth_time, ctx=rt.ctx, session=session.login
    )
    return render.to_client(
        rt.pages, location, req.redirect_uri, response_mode=req.response_mode, after_post=after_post
    )
