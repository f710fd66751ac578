"""JOSE header rules shared by JWS and JWE: `crit` (RFC 7515 §4.1.11) and refused members."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ._errors import InvalidHeader

# Header parameters registered by RFC 7515, 7516, 7518 and 7797: never legal in `crit`.
REGISTERED: Final = frozenset(
    {
        "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit",
        "enc", "zip", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c",
    }
)  # fmt: skip

# Keys named or carried by the token itself: trusting them lets the attacker pick the key.
REFUSED: Final = ("jwk", "jku", "x5u")


def check_crit(
    protected: Mapping[str, Any],
    understood: frozenset[str],
    unprotected: Mapping[str, Any] | None = None,
) -> None:
    """Refuse a malformed `crit`, or one naming an extension this code does not implement."""
    if unprotected is not None and "crit" in unprotected:
        raise InvalidHeader("'crit' must be in the protected header")
    if "crit" not in protected:
        return
    crit = protected["crit"]
    if not isinstance(crit, list) or not crit:
        raise InvalidHeader("'crit' must be a non-empty array of header names")
    seen: set[str] = set()
    for name in crit:
        if not isinstance(name, str) or not name:
            raise InvalidHeader("'crit' must list header names as strings")
        if name in seen:
            raise InvalidHeader(f"'crit' lists {name!r} twice")
        seen.add(name)
        if name in REGISTERED:
            raise InvalidHeader(f"'crit' must not list the registered header {name!r}")
        if name not in protected:
            raise InvalidHeader(f"'crit' lists {name!r}, which the protected header lacks")
        if name not in understood:
            raise InvalidHeader(f"critical header extension {name!r} is not supported")


def check_refused(header: Mapping[str, Any]) -> None:
    """Refuse headers that try to supply their own verification key."""
    for name in REFUSED:
        if name in header:
            raise InvalidHeader(
                f"header parameter {name!r} is refused: keys are never taken from the token"
            )


def check_disjoint(*headers: Mapping[str, Any] | None) -> None:
    """RFC 7515 §7.2.1 / RFC 7516 §7.2.1: a name may occur in only one of the headers."""
    seen: set[str] = set()
    for header in headers:
        if not header:
            continue
        if not seen.isdisjoint(header):
            dup = sorted(seen.intersection(header))[0]
            raise InvalidHeader(f"header parameter {dup!r} occurs in more than one header")
        seen.update(header)
