"""RP-Initiated Logout (OpenID Connect RP-Initiated Logout 1.0), sans-IO.

`parse_logout_request` checks the end-session request: an `id_token_hint` must be an ID token
this server signed (expired is fine), a `client_id` must name the hint's audience, and a
`post_logout_redirect_uri` must be one the client registered, exactly (§2, §3): otherwise
the request is refused on a page and nobody is redirected anywhere. `logged_out_redirect`
builds where the user agent goes afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

from .context import Context
from .errors import InvalidRequest
from .id_token import read_id_token_hint
from .models import Client
from .subject import subject_for

MAX_PARAMETER_LENGTH: Final = 4096
Params = Mapping[str, Sequence[str]]


class InvalidLogoutRequest(InvalidRequest):
    """A logout request that is refused on a page: never redirected."""

    redirectable = False


@dataclass(frozen=True, kw_only=True)
class LogoutRequest:
    client: Client | None
    hinted_subject: str | None  # the `sub` of a valid id_token_hint, as the client saw it
    post_logout_redirect_uri: str | None  # registered by `client`, checked
    state: str | None

    def is_for(self, user_id: str, ctx: Context) -> bool:
        """True when the hint names this user (so logging them out needs no confirmation)."""
        if self.client is None or self.hinted_subject is None:
            return False
        return subject_for(self.client, user_id, ctx.config) == self.hinted_subject


def _single(params: Params, name: str) -> str | None:
    values = params.get(name) or []
    if len(values) > 1:
        raise InvalidLogoutRequest(f"{name} must not be repeated")
    value = values[0] if values else None
    if value is not None and len(value) > MAX_PARAMETER_LENGTH:
        raise InvalidLogoutRequest(f"{name} is too long")
    return value or None


async def parse_logout_request(params: Params, ctx: Context) -> LogoutRequest:
    """Check an end-session request; `InvalidLogoutRequest` (shown on a page) if it is bad."""
    hint = _single(params, "id_token_hint")
    client_id = _single(params, "client_id")
    redirect_uri = _single(params, "post_logout_redirect_uri")
    state = _single(params, "state")
    subject: str | None = None
    if hint is not None:
        claims = await read_id_token_hint(hint, ctx)
        if claims is None:
            raise InvalidLogoutRequest("id_token_hint is not an ID token of this server")
        if client_id is not None and client_id != claims["aud"]:
            raise InvalidLogoutRequest("client_id is not the id_token_hint's audience")
        client_id, subject = claims["aud"], claims["sub"]
    client = await ctx.store.clients.get(client_id) if client_id is not None else None
    if client_id is not None and client is None:
        raise InvalidLogoutRequest("unknown client_id")
    if redirect_uri is not None:
        # §3: the OP must not redirect to a URI the client did not register
        if client is None:
            raise InvalidLogoutRequest(
                "post_logout_redirect_uri needs an id_token_hint or a client_id"
            )
        if redirect_uri not in client.oidc.post_logout_redirect_uris:
            raise InvalidLogoutRequest("post_logout_redirect_uri is not registered for this client")
    return LogoutRequest(
        client=client,
        hinted_subject=subject,
        post_logout_redirect_uri=redirect_uri,
        state=state if redirect_uri is not None else None,
    )


def logged_out_redirect(req: LogoutRequest) -> str | None:
    """Where to send the user agent after logging out (with `state`, §3), or None."""
    if req.post_logout_redirect_uri is None:
        return None
    if req.state is None:
        return req.post_logout_redirect_uri
    separator = "&" if "?" in req.post_logout_redirect_uri else "?"
    return f"{req.post_logout_redirect_uri}{separator}{urlencode({'state': req.state})}"
