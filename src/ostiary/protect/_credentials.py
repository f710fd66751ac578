"""Where the access token is in a request (RFC 6750 §2), and nowhere else by default."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ._errors import InvalidRequest

MAX_TOKEN_LENGTH: Final = 16 * 1024
# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
SCHEMES: Final = ("bearer", "dpop")


@dataclass(frozen=True, slots=True)
class Credentials:
    """The token a request carries and how: `scheme` is "Bearer" or "DPoP"."""

    token: str
    scheme: str = "Bearer"
    dpop_proof: str | None = None
    dpop_headers: int = 0  # how many DPoP headers the request had: RFC 9449 §4.3 allows one


def from_authorization(values: Sequence[str], dpop: Sequence[str] = ()) -> Credentials | None:
    """The token of the `Authorization` header values (and, for the DPoP scheme, the `DPoP`
    header's proof); None when there is none."""
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest("send one Authorization header")
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() not in SCHEMES:
        return None  # another scheme (Basic, ...) is not ours to judge: no token
    token = token.strip(" ")
    if not token or len(token) > MAX_TOKEN_LENGTH or _B64TOKEN.fullmatch(token) is None:
        raise InvalidRequest(f"the {scheme} credentials are malformed")
    if scheme.lower() != "dpop":
        return Credentials(token=token)
    return Credentials(
        token=token,
        scheme="DPoP",
        dpop_proof=dpop[0] if len(dpop) == 1 else None,
        dpop_headers=len(dpop),
    )


def from_parameter(values: Sequence[str], where: str) -> Credentials | None:
    """An `access_token` form or query parameter (RFC 6750 §2.2, §2.3), when enabled."""
    if not values:
        return None
    if len(values) > 1 or not values[0]:
        raise InvalidRequest(f"send one access_token in the {where}")
    token = values[0]
    if len(token) > MAX_TOKEN_LENGTH or _B64TOKEN.fullmatch(token) is None:
        raise InvalidRequest(f"the access_token in the {where} is malformed")
    return Credentials(token=token)


def only_one(found: Mapping[str, Credentials | None]) -> Credentials | None:
    """RFC 6750 §2: a client MUST NOT use more than one method to send the token."""
    present = [credentials for credentials in found.values() if credentials is not None]
    if len(present) > 1:
        raise InvalidRequest(
            "send the access token one way only: "
            + ", ".join(name for name, credentials in found.items() if credentials is not None)
        )
    return present[0] if present else None
