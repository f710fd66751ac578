"""The `claims` request parameter (OpenID Connect Core §5.5): individual claims, asked for
in UserInfo and in the ID token, beyond or instead of what the scope releases.

`parse_claims_request` checks the untrusted JSON text: an object with optional `userinfo` and
`id_token` members, each an object of claim names whose value is null or an object with
`essential` (a boolean), `value` (one value) or `values` (a list). Anything else, and
anything oversized, is `InvalidRequest`. Members and claims this server does not know are
ignored (§5.5: "not understood MUST be ignored"); a claim is kept only when a scope the
client may be given would release it, so the parameter never widens what a client may see.
`sub` is kept for its value check (§5.5.1); `acr` is not asserted, so an essential `acr`
with values cannot be met and is refused (§5.5.1.1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from .claims import claims_for_scope
from .errors import AccessDenied, InvalidRequest
from .models import ClaimRequest, ClaimsRequest, ClaimValue

MAX_CLAIMS_LENGTH: Final = 4096  # characters of the parameter
MAX_CLAIMS_PER_MEMBER: Final = 64
MAX_VALUES: Final = 16
MAX_VALUE_LENGTH: Final = 256
MEMBERS: Final = ("userinfo", "id_token")
# Claims that belong to the authentication, not to a scope: always in the ID token.
AUTHENTICATION_CLAIMS: Final = frozenset({"sub", "auth_time"})


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise InvalidRequest("claims must not repeat a member name")
    return obj


def _no_constant(name: str) -> Any:
    raise InvalidRequest(f"claims holds {name}, which is not JSON")


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_unique, parse_constant=_no_constant)


def parse_claims_request(text: str, client_scopes: frozenset[str]) -> ClaimsRequest:
    """The checked `claims` parameter; `InvalidRequest` saying what is wrong with it.

    Only claims the client's registered scopes could release (and `sub`, `auth_time`) are
    kept; the rest are ignored, as claims a server does not understand (§5.5).
    """
    if len(text) > MAX_CLAIMS_LENGTH:
        raise InvalidRequest(f"claims must be at most {MAX_CLAIMS_LENGTH} characters")
    try:
        data = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise InvalidRequest("claims must be a JSON object (OpenID Connect Core 5.5)") from None
    if not isinstance(data, dict):
        raise InvalidRequest("claims must be a JSON object (OpenID Connect Core 5.5)")
    releasable = claims_for_scope(client_scopes) | AUTHENTICATION_CLAIMS
    parsed: dict[str, dict[str, ClaimRequest]] = {}
    for member in MEMBERS:
        if member not in data:
            continue
        requested = data[member]
        if not isinstance(requested, dict):
            raise InvalidRequest(f"claims.{member} must be a JSON object of claim names")
        if len(requested) > MAX_CLAIMS_PER_MEMBER:
            raise InvalidRequest(f"claims.{member} asks for too many claims")
        checked = {name: _claim(member, name, spec) for name, spec in requested.items()}
        if member == "id_token":
            _check_acr(checked.get("acr"))
        parsed[member] = {name: spec for name, spec in checked.items() if name in releasable}
    request = ClaimsRequest(
        userinfo=parsed.get("userinfo", {}), id_token=parsed.get("id_token", {})
    )
    if required_subjects(request) == frozenset():
        raise InvalidRequest("claims asks for two different sub values")
    return request


def _claim(member: str, name: str, spec: Any) -> ClaimRequest:
    where = f"claims.{member}.{name}"
    if not name or len(name) > MAX_VALUE_LENGTH:
        raise InvalidRequest(f"claims.{member} has an empty or too long claim name")
    if spec is None:
        return ClaimRequest()
    if not isinstance(spec, dict):
        raise InvalidRequest(f"{where} must be null or a JSON object")
    essential = spec.get("essential", False)
    if not isinstance(essential, bool):
        raise InvalidRequest(f"{where}.essential must be true or false")
    if "value" in spec and "values" in spec:
        raise InvalidRequest(f"{where} must not have both value and values")
    values: tuple[ClaimValue, ...] | None = None
    if "value" in spec:
        values = (_value(where + ".value", spec["value"]),)
    elif "values" in spec:
        items = spec["values"]
        if not isinstance(items, list) or not items or len(items) > MAX_VALUES:
            raise InvalidRequest(f"{where}.values must be a list of 1 to {MAX_VALUES} values")
        values = tuple(_value(where + ".values", item) for item in items)
    if name == "sub" and values is not None and not all(isinstance(v, str) for v in values):
        raise InvalidRequest(f"{where} values must be strings")
    return ClaimRequest(essential=essential, values=values)


def _value(where: str, value: Any) -> ClaimValue:
    if isinstance(value, str):
        if not value or len(value) > MAX_VALUE_LENGTH:
            raise InvalidRequest(f"{where} must be a text of 1 to {MAX_VALUE_LENGTH} characters")
        return value
    if isinstance(value, bool | int | float) and not (
        isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**53
    ):
        return value
    raise InvalidRequest(f"{where} must be a text, a number or true or false")


def _check_acr(acr: ClaimRequest | None) -> None:
    # §5.5.1.1: an essential acr that cannot be met is a failed authentication. This server
    # asserts no authentication context class, so any essential acr with values is one.
    if acr is not None and acr.essential and acr.values is not None:
        raise AccessDenied("this server does not assert the requested acr values")


def required_subjects(request: ClaimsRequest | None) -> frozenset[str] | None:
    """The `sub` values the request accepts (§5.5.1: only that user may be answered for), or
    None when it names none. Empty when its two members name different users."""
    if request is None:
        return None
    accepted: frozenset[str] | None = None
    for member in (request.userinfo, request.id_token):
        spec = member.get("sub")
        if spec is None or spec.values is None:
            continue
        values = frozenset(str(v) for v in spec.values)
        accepted = values if accepted is None else accepted & values
    return accepted


def userinfo_claims(request: ClaimsRequest | None) -> frozenset[str]:
    """The user claims asked for one by one in UserInfo (`sub` is always there)."""
    if request is None:
        return frozenset()
    return frozenset(request.userinfo) - AUTHENTICATION_CLAIMS


def id_token_claims(request: ClaimsRequest | None) -> frozenset[str]:
    """The user claims asked for one by one in the ID token."""
    if request is None:
        return frozenset()
    return frozenset(request.id_token) - AUTHENTICATION_CLAIMS


def individual_claims(request: ClaimsRequest | None) -> frozenset[str]:
    """Every user claim the request asks for, wherever it is to be released."""
    return userinfo_claims(request) | id_token_claims(request)


def claims_request_json(request: ClaimsRequest) -> dict[str, Any]:
    """The request as JSON, to store with a code or a refresh token."""
    return {
        member: {name: _spec_json(spec) for name, spec in getattr(request, member).items()}
        for member in MEMBERS
    }


def _spec_json(spec: ClaimRequest) -> dict[str, Any] | None:
    if not spec.essential and spec.values is None:
        return None
    body: dict[str, Any] = {"essential": spec.essential}
    if spec.values is not None:
        body["values"] = list(spec.values)
    return body


def claims_request_from_json(data: Mapping[str, Any]) -> ClaimsRequest:
    """A request stored by `claims_request_json` (trusted: it was checked when parsed)."""
    members = {
        member: {
            name: ClaimRequest()
            if spec is None
            else ClaimRequest(
                essential=bool(spec.get("essential", False)),
                values=None if spec.get("values") is None else tuple(spec["values"]),
            )
            for name, spec in data.get(member, {}).items()
        }
        for member in MEMBERS
    }
    return ClaimsRequest(userinfo=members["userinfo"], id_token=members["id_token"])
