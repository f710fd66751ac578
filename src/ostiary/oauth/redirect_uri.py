"""Redirect URI rules: exact matching, with the native-app loopback exception.

A redirect URI is compared as a plain string with the registered ones (RFC 9700 §4.1.3,
OAuth 2.1 §2.3.1): no prefix, pattern or normalised match, which are how open redirectors and
code theft happen. The one exception is RFC 8252 §7.3: a native app listening on a loopback IP
address picks its port at run time, so for `http://127.0.0.1` and `http://[::1]` the port alone
may differ from the registered URI.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final
from urllib.parse import urlsplit

from .errors import UnregisteredRedirectUri

MAX_REDIRECT_URI_LENGTH: Final = 2000

# Parameters the authorization response adds (RFC 6749 §4.1.2, §4.1.2.1, RFC 9207): a
# registered URI that already carries one would make the response ambiguous.
RESPONSE_PARAMETERS: Final = frozenset({"code", "state", "iss", "error", "error_description"})

# RFC 3986 §3.1 scheme, then anything printable: `is_absolute_uri` refuses the rest.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_PRINTABLE = re.compile(r"[\x21-\x7e]+")
# RFC 8252 §7.3: http, a loopback IP literal, an optional port, then path and query.
_LOOPBACK = re.compile(
    r"http://(?P<host>127\.0\.0\.1|\[::1\])(?::(?P<port>[0-9]{1,5}))?(?P<rest>[/?][^#]*)?"
)


def is_absolute_uri(uri: str) -> bool:
    """True for an absolute URI (RFC 3986 §4.3) of printable ASCII with no fragment."""
    return (
        _PRINTABLE.fullmatch(uri) is not None
        and "#" not in uri
        and (m := _SCHEME.match(uri)) is not None
        and len(uri) > m.end()
    )


def _loopback_parts(uri: str) -> tuple[str, str] | None:
    """(host, path-and-query) of a loopback IP redirect URI with a valid port, else None."""
    m = _LOOPBACK.fullmatch(uri)
    if m is None:
        return None
    port = m.group("port")
    if port is not None and not 0 < int(port) < 65536:
        return None
    return m.group("host"), m.group("rest") or ""


def is_loopback_redirect_uri(uri: str) -> bool:
    """True for `http://127.0.0.1[:port]...` or `http://[::1][:port]...` (RFC 8252 §7.3)."""
    return _loopback_parts(uri) is not None


def is_redirect_uri_match(requested: str, registered: str) -> bool:
    """Exact string equality, or equal loopback URIs apart from the port (RFC 8252 §7.3).

    `localhost` gets no exception: RFC 8252 §8.3 advises against it, since the name may
    resolve elsewhere.
    """
    if requested == registered:
        return True
    ours = _loopback_parts(registered)
    return ours is not None and _loopback_parts(requested) == ours


def match_redirect_uri(requested: str | None, registered: Sequence[str]) -> str:
    """The redirect URI to use for this request, or `UnregisteredRedirectUri`.

    Without `redirect_uri`, the client's only registered URI is used (RFC 6749 §3.1.2.3);
    a client with several must name one.
    """
    if requested is None:
        if len(registered) == 1:
            return registered[0]
        raise UnregisteredRedirectUri("redirect_uri is required for this client")
    if len(requested) > MAX_REDIRECT_URI_LENGTH:
        raise UnregisteredRedirectUri("redirect_uri is too long")
    # RFC 6749 §3.1.2: an absolute URI that MUST NOT include a fragment.
    if not is_absolute_uri(requested):
        raise UnregisteredRedirectUri("redirect_uri must be an absolute URI without a fragment")
    if any(is_redirect_uri_match(requested, uri) for uri in registered):
        return requested
    raise UnregisteredRedirectUri("redirect_uri is not registered for this client")


def check_registered_redirect_uri(uri: str) -> None:
    """Raise `ValueError` unless `uri` may be registered for a client.

    https anywhere; http only for a loopback IP literal or `localhost` (development and native
    apps, RFC 8252 §7.3, §8.3); or a private-use scheme with a dot in it (RFC 8252 §7.1).
    """
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        raise ValueError("redirect URI is too long")
    if not is_absolute_uri(uri):
        raise ValueError(f"redirect URI must be absolute, without a fragment: {uri!r}")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname or "@" in parts.netloc:
            raise ValueError(f"redirect URI needs a host and no user info: {uri!r}")
        if scheme == "http" and not (
            is_loopback_redirect_uri(uri) or parts.hostname == "localhost"
        ):
            raise ValueError(f"http redirect URIs are for loopback addresses only: {uri!r}")
    elif "." not in scheme:
        raise ValueError(f"redirect URI scheme must be a reversed domain name: {uri!r}")
    names = {pair.partition("=")[0] for pair in parts.query.split("&") if pair}
    if clash := sorted(names & RESPONSE_PARAMETERS):
        raise ValueError(f"redirect URI query must not use {', '.join(clash)}: {uri!r}")
