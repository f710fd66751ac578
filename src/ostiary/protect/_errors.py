"""What a resource server answers when a request's token is missing or not good enough.

RFC 6750 §3.1: `invalid_request` (400), `invalid_token` (401), `insufficient_scope` (403).
Descriptions help the caller fix the request and never repeat the token or what it holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar, Final

# RFC 6750 §3: error_description and scope use %x20-21 / %x23-5B / %x5D-7E, no `"` or `\`.
_NOT_QUOTABLE: Final = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


class ProtectError(Exception):
    """A request refused by `ostiary.protect`; `status` and `challenge()` make the response."""

    error: ClassVar[str] = "invalid_token"
    status: ClassVar[int] = 401

    def __init__(self, description: str = "", *, detail: str = "") -> None:
        super().__init__(description or self.error)
        self.description = description
        self.detail = detail  # logs only: never rendered
        self.scheme = "Bearer"  # the scheme the request used: its challenge gets the error


class InvalidRequest(ProtectError):
    """Malformed: several tokens, a token where it is not accepted, a bad DPoP header."""

    error = "invalid_request"
    status = 400


class InvalidToken(ProtectError):
    """Expired, revoked, forged, for another API or another issuer, or not understood."""

    error = "invalid_token"
    status = 401


class InvalidDPoPProof(ProtectError):
    """RFC 9449 §7.1: the DPoP proof is missing, malformed, replayed or does not match."""

    error = "invalid_dpop_proof"
    status = 401

    def __init__(self, description: str = "") -> None:
        super().__init__(description)
        self.scheme = "DPoP"


class InsufficientScope(ProtectError):
    """The token is good but lacks a scope this operation needs (RFC 6750 §3.1)."""

    error = "insufficient_scope"
    status = 403

    def __init__(self, scopes: Iterable[str]) -> None:
        self.scopes = tuple(scopes)
        needed = " ".join(self.scopes)
        super().__init__(f"the access token needs the scope {needed}")


class Unavailable(ProtectError):
    """The issuer's metadata or keys cannot be had, and none are cached: fail closed."""

    error = "temporarily_unavailable"
    status = 503

    def __init__(self, description: str, *, retry_after: int) -> None:
        super().__init__(description)
        self.retry_after = retry_after


def quoted(value: str) -> str:
    """A value safe inside an auth-param's quotes (RFC 6750 §3 character set)."""
    return '"' + _NOT_QUOTABLE.sub("?", value) + '"'


def challenges(
    error: ProtectError | None, *, realm: str | None = None, dpop_algs: Iterable[str] = ()
) -> str:
    """The `WWW-Authenticate` value: a Bearer challenge, and a DPoP one when DPoP is
    accepted (RFC 9449 §7.1: both, when both are); the error goes to the scheme it is about."""
    dpop_algs = tuple(dpop_algs)
    scheme = error.scheme if error is not None else "Bearer"
    found = [challenge(error if scheme == "Bearer" else None, scheme="Bearer", realm=realm)]
    if dpop_algs:
        dpop_error = error if scheme == "DPoP" else None
        found.append(challenge(dpop_error, scheme="DPoP", realm=realm, algs=dpop_algs))
    return ", ".join(found)


def challenge(
    error: ProtectError | None,
    *,
    scheme: str = "Bearer",
    realm: str | None = None,
    algs: Iterable[str] = (),
) -> str:
    """One `WWW-Authenticate` challenge for `scheme`.

    RFC 6750 §3: a request with no credentials gets the bare challenge, without an error code.
    """
    params: list[str] = []
    if realm:
        params.append(f"realm={quoted(realm)}")
    if error is not None and not isinstance(error, Unavailable):
        params.append(f"error={quoted(error.error)}")
        if error.description:
            params.append(f"error_description={quoted(error.description)}")
        if isinstance(error, InsufficientScope):
            params.append(f"scope={quoted(' '.join(error.scopes))}")
    algs = " ".join(algs)
    if scheme == "DPoP" and algs:
        params.append(f"algs={quoted(algs)}")  # RFC 9449 §7.1
    return f"{scheme} {', '.join(params)}" if params else scheme
