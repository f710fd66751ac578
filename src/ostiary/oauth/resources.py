"""Resource indicators (RFC 8707): which APIs a token is for, and so its audience and scope.

Used by the authorization endpoint (the resources a code may be redeemed for) and the token
endpoint (the resources a token is minted for, never more than the grant allows). A resource
must be an API registered on this server (`ostiary apis create`); a token for it carries only
that API's scopes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .config import ServerConfig
from .context import Context
from .errors import InvalidScope, InvalidTarget
from .models import Api
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


async def registered_apis(resources: Sequence[str], ctx: Context) -> tuple[Api, ...]:
    """The registered API of each parsed resource; an unknown one is `InvalidTarget`.

    RFC 8707 §2: the server refuses a resource it does not know. The description does not
    say which one, since the client named them all and an enumeration needs no help.
    """
    apis = []
    for resource in resources:
        api = await ctx.store.apis.get(resource)
        if api is None:
            raise InvalidTarget("resource is not an API this server issues tokens for")
        apis.append(api)
    return tuple(apis)


def scope_for_apis(scope: frozenset[str], apis: Sequence[Api]) -> frozenset[str]:
    """The part of `scope` an access token for `apis` may carry: their scopes only.

    Without a resource the scope is unchanged. A scope left empty by the narrowing, when
    something was to be granted, is `InvalidScope`: the token would be good for nothing.
    """
    if not apis:
        return scope
    allowed = frozenset().union(*(api.scopes for api in apis))
    narrowed = scope & allowed
    if scope and not narrowed:
        raise InvalidScope("none of the scopes belongs to the requested resource")
    return narrowed


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
