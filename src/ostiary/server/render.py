"""The one place errors and protocol responses become HTTP.

- Back-channel endpoints (token, revocation, introspection, metadata): RFC 6749 §5.2 JSON
  with `Cache-Control: no-store`; 401 carries a challenge, 429 a `Retry-After`.
- The authorization endpoint and the pages: errors that may not be sent to the client (no
  verified redirect_uri) are shown on an HTML error page, never redirected (RFC 6749
  §4.1.2.1); the others redirect to the client with `error`, `state` and `iss` (RFC 9207).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import Scope

from ostiary.oauth.authorize import AuthorizationRedirectError, response_fields
from ostiary.oauth.errors import InvalidRequest, OAuthError, SlowDown, TemporarilyUnavailable
from ostiary.oauth.token_request import TokenResponse, error_response

from . import metrics
from .pages import Pages
from .security_headers import set_defaults

log = logging.getLogger("ostiary.server")

# Paths that answer people with pages; every other path answers programs with JSON.
PAGE_PATHS: Final = ("/authorize", "/login", "/consent", "/select-account", "/logout")

# What the error page says, in plain words, for each error code.
_PAGE_TITLES: Final = {
    "invalid_request": "This sign-in link is not valid",
    "access_denied": "Access denied",
    "slow_down": "Too many attempts",
    "temporarily_unavailable": "Try again in a moment",
    "server_error": "Something went wrong",
}


def is_page_path(path: str) -> bool:
    return path in PAGE_PATHS


def token_response(response: TokenResponse) -> Response:
    """A core `TokenResponse` (success or error) as JSON."""
    if response.status >= 400:
        metrics.count_oauth_error(str(response.body.get("error", "")))
    return JSONResponse(response.body, status_code=response.status, headers=response.headers)


def json_error(error: OAuthError, *, status: int | None = None) -> Response:
    """RFC 6749 §5.2 error JSON, no-store; `status` overrides the error's own (413, 405)."""
    shaped = error_response(error)
    metrics.count_oauth_error(error.error)
    headers = dict(shaped.headers)
    return JSONResponse(shaped.body, status_code=status or shaped.status, headers=headers)


def json_body(
    body: dict[str, Any], *, cache: str = "no-store", headers: Mapping[str, str] | None = None
) -> Response:
    """A successful JSON document (metadata, JWKS, introspection)."""
    all_headers = {"Cache-Control": cache, **(headers or {})}
    if cache == "no-store":
        all_headers["Pragma"] = "no-cache"
    return JSONResponse(body, headers=all_headers)


def error_page(pages: Pages, error: OAuthError, *, status: int | None = None) -> Response:
    """An error shown to the person, not sent to the client: the description, never detail."""
    code = status or error.status
    metrics.count_oauth_error(error.error)
    headers: dict[str, str] = {}
    if isinstance(error, SlowDown | TemporarilyUnavailable):
        headers["Retry-After"] = str(max(1, error.retry_after))
    title = _PAGE_TITLES.get(error.error, "This request cannot be completed")
    return pages.render(
        "error.html",
        {
            "title": title,
            "message": error.description or HTTPStatus(code).phrase,
            "error_code": error.error,
        },
        status=code,
        headers=headers,
    )


def redirect(location: str, *, after_post: bool = False) -> Response:
    """Send the browser on; 303 after a form post so it follows with GET (RFC 9700 §4.11)."""
    return RedirectResponse(location, status_code=303 if after_post else 302)


def authorization_error(
    pages: Pages, error: OAuthError | AuthorizationRedirectError, *, after_post: bool = False
) -> Response:
    """An authorization endpoint error: to the client when its redirect_uri is verified,
    else on an error page (RFC 6749 §4.1.2.1)."""
    if isinstance(error, AuthorizationRedirectError):
        metrics.count_oauth_error(error.error.error)
        return to_client(
            pages,
            error.location,
            error.redirect_uri,
            response_mode=error.response_mode,
            after_post=after_post,
        )
    return error_page(pages, error)


def to_client(
    pages: Pages,
    location: str,
    redirect_uri: str,
    *,
    response_mode: str = "query",
    after_post: bool = False,
) -> Response:
    """The authorization response at the client's verified redirect_uri: a redirect with the
    parameters in the query, or (`form_post`, Form Post Response Mode §2) a page whose form
    posts them there, submitted by a script of ours or by the person's click."""
    if response_mode != "form_post":
        return redirect(location, after_post=after_post)
    return pages.render(
        "form_post.html",
        {
            "title": "Continue",
            "action": redirect_uri,
            "fields": response_fields(location, redirect_uri),
        },
        form_targets=[redirect_uri],
        scripts=True,
    )


def refusal(pages: Pages, scope: Scope, status: int) -> Response:
    """Answer a request refused before routing (413 body too large, 400 bad length, 404,
    405): a page on the pages' paths, JSON everywhere else."""
    descriptions = {
        400: "the request is malformed",
        404: "there is nothing here",
        405: "this method is not allowed here",
        413: "the request body is too large",
    }
    error = InvalidRequest(descriptions.get(status, HTTPStatus(status).phrase.lower()))
    if is_page_path(str(scope.get("path", ""))):
        return error_page(pages, error, status=status)
    return json_error(error, status=status)


def unavailable(pages: Pages, request: Request, error: TemporarilyUnavailable) -> Response:
    """503 with Retry-After (the database is out of reach): a page or JSON, as for any error.
    Logged without a traceback: the cause is outside the server, and it recovers by itself."""
    log.warning(
        "answered 503 on %s %s: %s",
        request.method,
        request.url.path,
        error.detail or error.description,
    )
    page = is_page_path(request.url.path)
    response = error_page(pages, error) if page else json_error(error)
    set_defaults(response.headers)
    return response


def server_error(pages: Pages, request: Request, exc: Exception) -> Response:
    """The last resort: logged with its traceback, answered without one."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    error = _ServerError("the server could not complete the request")
    if is_page_path(request.url.path):
        response = error_page(pages, error, status=500)
    else:
        response = json_error(error, status=500)
    set_defaults(response.headers)
    return response


class _ServerError(OAuthError):
    error = "server_error"
    status = 500
    redirectable = False
