"""What `clients create` accepts, checked with the rules the server applies to requests."""

from __future__ import annotations

from typing import Final

from ostiary.oauth.errors import InvalidScope
from ostiary.oauth.models import GRANT_TYPES
from ostiary.oauth.redirect_uri import check_registered_redirect_uri
from ostiary.oauth.scopes import parse_scope

from ._console import fail

# OAuth 2.1 drops the implicit grant; the password grant is an explicit legacy opt-in.
OFFERED_GRANT_TYPES: Final = ("authorization_code", "refresh_token", "client_credentials")
MAX_REDIRECT_URIS: Final = 20


def check_grant_types(text: str, *, legacy: bool) -> frozenset[str]:
    """The grant types in a comma-separated list; the password grant only with `legacy`."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name == "password" and not legacy:
            fail("the password grant is a legacy opt-in: pass --legacy-password-grant")
        if name not in GRANT_TYPES:
            fail(f"unknown grant type {name!r}; choose from {', '.join(OFFERED_GRANT_TYPES)}")
    grants = frozenset(names) | ({"password"} if legacy else frozenset())
    if not grants:
        fail("--grant-types is empty")
    if "refresh_token" in grants and not grants & {"authorization_code", "password"}:
        # RFC 6749 §4.4.3: client_credentials issues no refresh token; alone it gets none.
        fail("refresh_token needs authorization_code (or the legacy password grant)")
    return grants


def check_redirect_uris(text: str) -> tuple[str, ...]:
    """The redirect URIs of a comma-separated list, each one registrable (RFC 6749 §3.1.2,
    RFC 8252 §7, `oauth.redirect_uri`), in the order given, without repeats."""
    uris = [uri.strip() for uri in text.split(",") if uri.strip()]
    if len(uris) > MAX_REDIRECT_URIS:
        fail(f"at most {MAX_REDIRECT_URIS} redirect URIs per client")
    for uri in uris:
        try:
            check_registered_redirect_uri(uri)
        except ValueError as exc:
            fail(str(exc))
    return tuple(dict.fromkeys(uris))


def check_scopes(text: str) -> frozenset[str]:
    """The scope tokens of a space-separated list (RFC 6749 §3.3 syntax)."""
    try:
        return parse_scope(" ".join(text.split())) or frozenset()
    except InvalidScope as exc:
        fail(f"--scopes: {exc.description}")
