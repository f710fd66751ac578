"""The browser login session: a signed cookie naming the user, when they logged in and the
provider session (stored, so logout or an operator can end it everywhere: `LoginSession`).

HttpOnly (no script reads it), SameSite=Lax (sent on the top-level navigation back from a
client, not on cross-site posts), Secure outside localhost, where the `__Host-` prefix also
pins it to this host and path (RFC 6265bis §4.1.3.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from ostiary.oauth.models import LoginSession

from .signed_values import ValueSigner

_PURPOSE: Final = "session"


@dataclass(frozen=True, kw_only=True)
class Session:
    user_id: str
    auth_time: int  # OpenID Connect Core §2: when the user last entered their password
    # the provider session's id (its hash is stored, `LoginSession`); None only for a
    # session object that was never a cookie (a consent page's seal compares the two above)
    session_id: str | None = None
    # the stored provider session, when it was read from the store (its `sid`, its hash)
    login: LoginSession | None = None


@dataclass(frozen=True, kw_only=True)
class CookiePolicy:
    """How this server sets cookies: Secure and `__Host-` named unless it runs on localhost."""

    secure: bool

    def name(self, base: str) -> str:
        return f"__Host-{base}" if self.secure else base

    def set(
        self, response: Response, base: str, value: str, *, max_age: int, samesite: str = "lax"
    ) -> None:
        response.set_cookie(
            self.name(base),
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite=samesite,  # type: ignore[arg-type]  # "lax" | "strict" by construction
        )

    def clear(self, response: Response, base: str) -> None:
        response.delete_cookie(
            self.name(base), path="/", secure=self.secure, httponly=True, samesite="lax"
        )


SESSION_COOKIE: Final = "ostiary_session"


def read_session(
    request: Request, signer: ValueSigner, cookies: CookiePolicy, *, now: int
) -> Session | None:
    """The session in the request's cookie, or None when absent, forged or expired."""
    data = signer.verify(_PURPOSE, request.cookies.get(cookies.name(SESSION_COOKIE)), now=now)
    if data is None:
        return None
    user_id, auth_time, session_id = data.get("sub"), data.get("auth_time"), data.get("sid")
    if not isinstance(user_id, str) or type(auth_time) is not int:
        return None
    if not isinstance(session_id, str):
        return None  # a cookie from before provider sessions were stored: sign in again
    return Session(user_id=user_id, auth_time=auth_time, session_id=session_id)


def start_session(
    response: Response,
    session: Session,
    signer: ValueSigner,
    cookies: CookiePolicy,
    *,
    now: int,
    ttl: int,
) -> None:
    """Set the session cookie on `response`."""
    data = {"sub": session.user_id, "auth_time": session.auth_time, "sid": session.session_id}
    value = signer.sign(_PURPOSE, data, now=now, ttl=ttl)
    cookies.set(response, SESSION_COOKIE, value, max_age=ttl)
