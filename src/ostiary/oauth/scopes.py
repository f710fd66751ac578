"""Scope syntax (RFC 6749 §3.3) and narrowing: what is asked, allowed and granted."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from .errors import InvalidScope

MAX_SCOPE_LENGTH: Final = 2048
MAX_SCOPE_TOKENS: Final = 64
# OpenID Connect Core §11: a grant usable while the person is not signed in
OFFLINE_ACCESS: Final = "offline_access"

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), that is printable ASCII but
# `"` and `\`; tokens are separated by exactly one space.
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+(?: [\x21\x23-\x5b\x5d-\x7e]+)*")


def is_scope_token(value: str) -> bool:
    """True when `value` is one scope-token (RFC 6749 §3.3)."""
    return " " not in value and _SCOPE.fullmatch(value) is not None


def parse_scope(value: str | None) -> frozenset[str] | None:
    """The set of scope tokens in a `scope` parameter; None when absent or empty.

    Order and duplicates carry no meaning (RFC 6749 §3.3). Malformed values raise
    `InvalidScope`.
    """
    if value is None or value == "":
        return None
    if len(value) > MAX_SCOPE_LENGTH:
        raise InvalidScope("scope is too long")
    if _SCOPE.fullmatch(value) is None:
        raise InvalidScope("scope must be space-separated tokens of printable ASCII")
    tokens = frozenset(value.split(" "))
    if len(tokens) > MAX_SCOPE_TOKENS:
        raise InvalidScope("scope has too many values")
    return tokens


def format_scope(scope: Iterable[str]) -> str:
    """The `scope` parameter value for a set of tokens, sorted so it is stable."""
    return " ".join(sorted(scope))


def narrow_scope(requested: frozenset[str] | None, allowed: frozenset[str]) -> frozenset[str]:
    """What may be issued: requested ∩ allowed; all of `allowed` when nothing was requested.

    Tokens the client may not have are dropped (RFC 6749 §3.3 lets the server ignore part of
    the request; the response then states the issued scope). Asking only for scopes the
    client may not have is `InvalidScope`.
    """
    if requested is None:
        return allowed
    issued = requested & allowed
    if requested and not issued:
        raise InvalidScope("none of the requested scopes is allowed for this client")
    return issued


def require_subset(requested: frozenset[str] | None, granted: frozenset[str]) -> frozenset[str]:
    """A refresh or exchange may only keep or shrink the granted scope (RFC 6749 §6).

    Returns `granted` when nothing was requested; raises `InvalidScope` for anything extra.
    """
    if requested is None:
        return granted
    if not requested <= granted:
        raise InvalidScope("the requested scope exceeds what was granted")
    return requested
