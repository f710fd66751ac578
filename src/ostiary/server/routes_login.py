"""Sign-in: GET shows the form, POST checks the password and continues the pending request.

Unknown usernames cost the same Argon2id work as known ones (`dummy_verify`), and every
failure says the same words, so the page does not reveal which accounts exist. Failures are
throttled per username and per address (`throttle.py`).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ostiary.oauth.authorize import AuthorizationRedirectError, AuthorizationRequest
from ostiary.oauth.errors import InvalidRequest, OAuthError
from ostiary.oauth.models import AuditEvent, User

from . import metrics, render
from .forms import Params, form_params, single
from .routes_authorize import (
    ExpiredForm,
    check_request,
    continue_authorization,
    login_page,
    open_pending,
)
from .runtime import Runtime, client_address, runtime

MAX_USERNAME_LENGTH: Final = 256
WRONG_CREDENTIALS: Final = "The username or password is not right."
TOO_MANY: Final = "Too many failed sign-in attempts. Wait a few minutes and try again."
MISSING_CREDENTIALS: Final = "Enter your username and password."
EXPIRED_FORM: Final = (
    "This sign-in form has expired or was not made by this server. "
    "Go back to the application and start again."
)


async def login_page_or_form(request: Request) -> Response:
    """`/login` as one resource, so a 405 names both its methods in `Allow` (RFC 9110 §15.5.6)."""
    if request.method == "POST":
        return await login(request)
    return await login_form(request)


async def login_form(request: Request) -> Response:
    rt = runtime(request)
    signed_in = await rt.signed_in(request)
    if signed_in is not None:
        return _signed_in_page(rt, signed_in[1])
    return login_page(request, rt, None, None)


async def login(request: Request) -> Response:
    rt = runtime(request)
    try:
        form = await form_params(request)
    except OAuthError as exc:
        return render.error_page(rt.pages, exc)
    if not rt.csrf.is_valid(request, "login", _one(form, "csrf_token")):
        return render.error_page(rt.pages, ExpiredForm(EXPIRED_FORM), status=403)
    # the request being continued, checked again by the core: it may have changed meanwhile
    req: AuthorizationRequest | None = None
    params: Params | None = None
    if "pending" in form:
        params = open_pending(rt, _one(form, "pending"))
        if params is None:
            return render.error_page(rt.pages, ExpiredForm(EXPIRED_FORM))
        try:
            req = await check_request(rt, params)
        except (OAuthError, AuthorizationRedirectError) as exc:
            return render.authorization_error(rt.pages, exc, after_post=True)

    username, password = _one(form, "username"), _one(form, "password")
    if (
        not username
        or not password
        or len(username) > MAX_USERNAME_LENGTH
        or not username.isprintable()  # no NUL or control character reaches the database
    ):
        return login_page(
            request, rt, req, params, error=MISSING_CREDENTIALS, username=username, status=400
        )
    # Usernames are stored NFC (RFC 8265 §3.4), so "é" typed either way finds the same user.
    user = await _authenticate(request, rt, unicodedata.normalize("NFC", username), password)
    if isinstance(user, Refusal):
        return login_page(
            request,
            rt,
            req,
            params,
            error=user.message,
            username=username,
            status=user.status,
            headers=user.headers,
        )
    now = rt.now()
    previous = await rt.signed_in(request)
    if previous is not None:  # one browser, one session: the one it replaces is over
        await rt.end_session(previous[0], reason="replaced")
    session = await rt.new_session(user.user_id, now=now)
    if req is None or params is None:
        response = _signed_in_page(rt, user)
    else:
        response = await continue_authorization(
            request, rt, req, params, user, session=session, after_post=True
        )
    rt.set_cookie(response, session, now=now)
    return response


def _one(form: Params, name: str) -> str | None:
    try:
        return single(form, name)
    except InvalidRequest:
        return None  # a repeated field counts as a missing one


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


async def _authenticate(
    request: Request, rt: Runtime, username: str, password: str
) -> User | Refusal:
    """The user, or why not: 400 wrong credentials, 429 throttled."""
    now = rt.now()
    address = client_address(request)
    store = rt.ctx.store
    wait = await rt.throttle.take_attempt(username, address, now=now)
    if wait:
        await store.audit.record(
            AuditEvent(event="login.throttled", at=now, address=address, detail={})
        )
        metrics.count_rate_limited("login")
        return Refusal(429, TOO_MANY, {"Retry-After": str(wait)})
    user = await store.users.by_username(username)
    if user is None:
        # the same Argon2id work as a real check: timing does not reveal unknown usernames
        await run_in_threadpool(rt.passwords.dummy_verify, password)
        ok = False
    else:
        ok = await run_in_threadpool(rt.passwords.verify, user.password_hash, password)
    if not ok or user is None:
        await store.audit.record(
            AuditEvent(
                event="login.failed",
                at=now,
                user_id=user.user_id if user is not None else None,
                address=address,
                detail={},
            )
        )
        return Refusal(400, WRONG_CREDENTIALS)
    await rt.throttle.record_success(username, address, now=now)
    await store.audit.record(
        AuditEvent(event="login.succeeded", at=now, user_id=user.user_id, address=address)
    )
    return user


def _signed_in_page(rt: Runtime, user: User) -> Response:
    return rt.pages.render("signed_in.html", {"title": "Signed in", "username": user.username})
