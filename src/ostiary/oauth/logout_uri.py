"""The rule a client's logout URIs share, sans-IO: `backchannel_logout_uri` (Back-Channel
Logout 1.0 §2.2) and `frontchannel_logout_uri` (Front-Channel Logout 1.0 §2).

Both specifications say the same: the URI SHOULD be https, MAY carry a port, path and query,
and MUST NOT include a fragment; http only where the OP allows it, which this server does
for a loopback address alone, as for every URI it calls. Each is client metadata, not a
redirect URI, so registration refuses a bad one with `invalid_client_metadata` (RFC 7591
§3.2.2 keeps `invalid_redirect_uri` for `redirect_uris`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .redirect_uri import MAX_REDIRECT_URI_LENGTH, is_absolute_uri, is_loopback_redirect_uri


def check_logout_uri(uri: str) -> None:
    """`ValueError` unless `uri` may be registered as a back- or front-channel logout URI."""
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        raise ValueError("the URI is too long")
    if not is_absolute_uri(uri):
        raise ValueError("the URI must be absolute, without a fragment")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname or "@" in parts.netloc:
        raise ValueError("the URI must be https, with a host and no user info")
    if scheme == "http" and not (is_loopback_redirect_uri(uri) or parts.hostname == "localhost"):
        raise ValueError("http is only for a loopback address; use https")
