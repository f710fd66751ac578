"""Front-channel logout (OpenID Connect Front-Channel Logout 1.0), sans-IO: the pages the
browser loads, each in a hidden iframe, when a login session ends at the end-session endpoint.

A client registers a `frontchannel_logout_uri` (§2): absolute, https (http only on a loopback
address, as for every URI this server calls), without a fragment. The session's clients are
the ones the store recorded as issued a code in it (§3), as for back-channel logout; each that
registered a URI gets one iframe. Its URI keeps its own query and gains `iss` and `sid`
whenever the session has a sid: §2 lets the OP always send them, both or neither, so a
client's `frontchannel_logout_session_required` is always met by sessions that have one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode, urlsplit

from .context import Context
from .logout_uri import check_logout_uri
from .models import LoginSession

# §2: the parameters the OP adds; a registered query that used them would be ambiguous
SESSION_PARAMETERS: Final = ("iss", "sid")


@dataclass(frozen=True, kw_only=True)
class FrontChannelLogout:
    """One iframe of the logged-out page."""

    client_id: str
    client_name: str
    url: str  # the registered frontchannel_logout_uri, with iss and sid when known


def check_frontchannel_logout_uri(uri: str) -> None:
    """`ValueError` unless `uri` may be registered as a frontchannel_logout_uri (§2): the
    rule of every logout URI, and no `iss` or `sid` of its own."""
    check_logout_uri(uri)
    parts = urlsplit(uri)
    names = {pair.partition("=")[0] for pair in parts.query.split("&") if pair}
    if clash := [name for name in SESSION_PARAMETERS if name in names]:
        raise ValueError(f"the URI's query must not use {', '.join(clash)}: the server adds it")


def frontchannel_logout_url(uri: str, *, issuer: str, sid: str | None) -> str:
    """`uri` with `iss` and `sid` added to its query (§2: both or neither; its own query
    kept), or `uri` itself for a session without a sid."""
    if sid is None:
        return uri
    separator = "" if uri.endswith(("?", "&")) else "&" if "?" in uri else "?"
    return f"{uri}{separator}{urlencode({'iss': issuer, 'sid': sid})}"


async def frontchannel_logouts(session: LoginSession, ctx: Context) -> list[FrontChannelLogout]:
    """One per client that took part in `session` and registered a frontchannel_logout_uri,
    in the order they joined it (§3: the OP keeps track of the RPs a session reached)."""
    logouts: list[FrontChannelLogout] = []
    for client_id in await ctx.store.sessions.clients_of(session.session_hash):
        client = await ctx.store.clients.get(client_id)
        uri = client.oidc.frontchannel_logout_uri if client is not None else None
        if client is None or uri is None:
            continue
        url = frontchannel_logout_url(uri, issuer=ctx.config.issuer, sid=session.sid)
        logouts.append(FrontChannelLogout(client_id=client_id, client_name=client.name, url=url))
    return logouts
