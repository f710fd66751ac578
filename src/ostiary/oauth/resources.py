"""Resource indicators (RFC 8707): which APIs a token is for, and so its audience.

Used by the authorization endpoint (the resources a code may be redeemed for) and the token
endpoint (the resources a token is minted for, never more than the grant allows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .config import ServerConfig
from .errors import InvalidTarget
from .redirect_uri import is_absolute_uri

MAX_RESOURCES: Final = 10
MAX_RESOURCE_LENGTH: Final = 512


def parse_resources(values: Sequence[str]) -> tuple[str, ...]:
    """The `resource` parameters of a request, in order, without duplicates.

    RFC 8707 §2: each is an absolute URI that MAY carry a query but MUST NOT carry a
    fragment, and the parameter may repeat. Anything else raises `InvalidTarget`.
    """
    if len(values) > MAX_RESOURCES:
        raise InvalidTarget("too many resource parameters")
    seen: dict[str, None] = {}
    for value in values:
        if len(value) > MAX_RESOURCE_LENGTH:
            raise InvalidTarget("resource is too long")
        if not is_absolute_uri(value):
            raise InvalidTarget("resource must be an absolute URI without a fragment")
        seen[value] = None
    return tuple(seen)


def narrow_resources(requested: Sequence[str], granted: Sequence[str]) -> tuple[str, ...]:
    """The resources a token request may name: a subset of the grant's (RFC 8707 §2.2).

    Nothing requested means everything granted; anything outside the grant is `InvalidTarget`.
    """
    wanted = parse_resources(requested)
    if not wanted:
        return tuple(granted)
    if not set(wanted) <= set(granted):
        raise InvalidTarget("resource was not part of the authorization grant")
    return wanted


def audience_for(resources: Sequence[str], config: ServerConfig) -> tuple[str, ...]:
    """The access token's `aud`: the resources, or the server's default audience."""
    return tuple(resources) if resources else (config.audience,)
