"""CSRF protection for the login and consent forms: a cookie and a token bound to it.

The browser holds a random value in an HttpOnly cookie; each form carries
HMAC(key, purpose | value) in a hidden field. A cross-site page can make the browser send the
cookie but can neither read it nor compute the token (RFC 9700 §4.7 and OWASP's "signed
double-submit cookie"). `Origin`, when the browser sends it, must be this server's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from .key_secret import derive_key
from .sessions import CookiePolicy

CSRF_COOKIE: Final = "ostiary_csrf"
CSRF_FIELD: Final = "csrf_token"
_COOKIE_TTL: Final = 24 * 3600
_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class CsrfToken:
    """The token to put in a form, and the cookie value to set if the browser had none."""

    token: str
    new_cookie: str | None

    def set_cookie(self, response: Response, cookies: CookiePolicy) -> None:
        if self.new_cookie is not None:
            cookies.set(response, CSRF_COOKIE, self.new_cookie, max_age=_COOKIE_TTL)


class CsrfProtection:
    def __init__(self, secret: bytes, cookies: CookiePolicy, *, issuer: str) -> None:
        self._key = derive_key(secret, "ostiary csrf v1")
        self._cookies = cookies
        parts = urlsplit(issuer)
        self._origin = f"{parts.scheme}://{parts.netloc}".lower()

    def _token_for(self, cookie: str, purpose: str) -> str:
        mac = hmac.new(self._key, f"{purpose}|{cookie}".encode("ascii"), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")

    def _cookie(self, request: Request) -> str | None:
        value = request.cookies.get(self._cookies.name(CSRF_COOKIE))
        return value if value is not None and _VALUE.fullmatch(value) else None

    def issue(self, request: Request, purpose: str) -> CsrfToken:
        """A token for a form of `purpose` ("login", "consent") shown in this response."""
        cookie = self._cookie(request)
        if cookie is not None:
            return CsrfToken(self._token_for(cookie, purpose), None)
        cookie = secrets.token_urlsafe(32)
        return CsrfToken(self._token_for(cookie, purpose), cookie)

    def is_valid(self, request: Request, purpose: str, token: str | None) -> bool:
        """True when the posted token matches the browser's cookie and the origin is ours."""
        if not self._is_same_origin(request):
            return False
        cookie = self._cookie(request)
        if cookie is None or not token or len(token) > 100:
            return False
        expected = self._token_for(cookie, purpose)
        return hmac.compare_digest(expected.encode("ascii"), token.encode("utf-8", "replace"))

    def _is_same_origin(self, request: Request) -> bool:
        origin = request.headers.get("origin")
        # Absent on some same-origin posts, and "null" on all of ours: with
        # `Referrer-Policy: no-referrer` browsers hide the origin too (Fetch §3.2.5). The
        # token decides then; a foreign origin that is stated is refused outright.
        if origin is None or origin == "null":
            return True
        own = f"{request.url.scheme}://{request.url.netloc}".lower()
        return origin.lower() in (self._origin, own)
