"""What every route needs once the app has started: the core's `Context` and the server's
own parts (cookies, CSRF, pages, throttle). Built by the app's lifespan, one per process."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import cast

from starlette.requests import Request
from starlette.responses import Response

from ostiary.oauth.context import Context
from ostiary.oauth.models import LoginSession, User
from ostiary.oauth.token_hash import hash_token, new_token_value

from .backchannel import LogoutSender
from .cors import ClientOrigins
from .csrf import CsrfProtection
from .health import DatabaseHealth
from .keyring import DbKeyRing
from .pages import Pages
from .passwords import Argon2PasswordHasher
from .sessions import CookiePolicy, Session, read_session, start_session
from .settings import Settings
from .signed_values import ValueSigner
from .throttle import LoginThrottle


@dataclass(frozen=True, kw_only=True)
class Runtime:
    settings: Settings
    ctx: Context
    keyring: DbKeyRing
    passwords: Argon2PasswordHasher
    signer: ValueSigner
    cookies: CookiePolicy
    csrf: CsrfProtection
    pages: Pages
    throttle: LoginThrottle
    origins: ClientOrigins  # CORS: the origins of registered clients' redirect URIs
    health: DatabaseHealth
    logouts: LogoutSender

    def now(self) -> int:
        return self.ctx.now()

    @property
    def hsts(self) -> bool:
        """Whether responses carry Strict-Transport-Security: only for an https issuer."""
        return self.ctx.config.issuer.startswith("https://")

    async def signed_in(self, request: Request) -> tuple[Session, User] | None:
        """The session and its user, or None (no session, or the user was deleted)."""
        session = read_session(request, self.signer, self.cookies, now=self.now())
        if session is None or session.session_id is None:
            return None
        # the stored session decides: ended by logout or `ostiary users sign-out`, it is over
        stored = await self.ctx.store.sessions.get(hash_token(session.session_id), now=self.now())
        if stored is None or stored.user_id != session.user_id:
            return None
        user = await self.ctx.store.users.get(session.user_id)
        return None if user is None else (dataclasses.replace(session, login=stored), user)

    async def new_session(self, user_id: str, *, now: int) -> Session:
        """Store a new provider session for `user_id` (its cookie is set by `set_cookie`)."""
        session_id = new_token_value()
        login = LoginSession(
            session_hash=hash_token(session_id),
            user_id=user_id,
            auth_time=now,
            created_at=now,
            expires_at=now + self.settings.session_ttl,
            sid=new_token_value(16),  # apart from the cookie's id: clients see this one
        )
        await self.ctx.store.sessions.add(login)
        return Session(user_id=user_id, auth_time=now, session_id=session_id, login=login)

    def set_cookie(self, response: Response, session: Session, *, now: int) -> None:
        ttl = self.settings.session_ttl
        start_session(response, session, self.signer, self.cookies, now=now, ttl=ttl)

    async def end_session(self, session: Session, *, reason: str = "logout") -> None:
        """End the stored provider session (the caller clears the cookie); the logout tokens
        it owes its clients are queued with it, and this process sends them soon."""
        if session.session_id is None:
            return
        if await self.ctx.store.sessions.end(
            hash_token(session.session_id), now=self.now(), reason=reason
        ):
            self.logouts.wake()


def runtime(request: Request) -> Runtime:
    """The app's runtime; only routes call this, after the lifespan has set it."""
    return cast(Runtime, request.app.state.runtime)


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"
