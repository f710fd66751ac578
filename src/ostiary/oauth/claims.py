"""Standard claims (OpenID Connect Core §5.1) and which scope releases which (§5.4)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from .models import User

# §5.4: the claims each scope value asks for.
SCOPE_CLAIMS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "profile": (
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ),
        "email": ("email", "email_verified"),
        "address": ("address",),
        "phone": ("phone_number", "phone_number_verified"),
    }
)
STANDARD_CLAIMS: Final = frozenset(name for names in SCOPE_CLAIMS.values() for name in names)
# The consent page's words for a claim asked for on its own (the `claims` parameter, §5.5).
CLAIM_DESCRIPTIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "name": "Your full name",
        "family_name": "Your family name",
        "given_name": "Your given name",
        "middle_name": "Your middle name",
        "nickname": "Your nickname",
        "preferred_username": "Your username",
        "profile": "The address of your profile page",
        "picture": "Your picture",
        "website": "Your website",
        "gender": "Your gender",
        "birthdate": "Your date of birth",
        "zoneinfo": "Your time zone",
        "locale": "Your language and region",
        "updated_at": "When your profile was last changed",
        "email": "Your email address",
        "email_verified": "Whether your email address was verified",
        "address": "Your postal address",
        "phone_number": "Your phone number",
        "phone_number_verified": "Whether your phone number was verified",
    }
)
BOOLEAN_CLAIMS: Final = frozenset({"email_verified", "phone_number_verified"})
ADDRESS_FIELDS: Final = frozenset(
    {"formatted", "street_address", "locality", "region", "postal_code", "country"}
)
MAX_CLAIM_LENGTH: Final = 1024


def claims_for_scope(scope: frozenset[str]) -> frozenset[str]:
    """The claim names the granted scope releases."""
    return frozenset(name for s in scope for name in SCOPE_CLAIMS.get(s, ()))


def user_claims(user: User, names: frozenset[str]) -> dict[str, Any]:
    """The user's values of `names`; `preferred_username` defaults to the username. A claim
    the user has no value for is left out (§5.3.2: not sent as null)."""
    values = dict(user.claims)
    values.setdefault("preferred_username", user.username)
    return {name: values[name] for name in sorted(names) if name in values}


def check_claim(name: str, value: Any) -> Any:
    """`value` in the type §5.1 gives `name`; `ValueError` saying what was wrong."""
    if name not in STANDARD_CLAIMS:
        raise ValueError(f"{name} is not an OpenID Connect standard claim")
    if name in BOOLEAN_CLAIMS:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    if name == "updated_at":
        if type(value) is not int or value < 0:
            raise ValueError("updated_at must be a number of seconds since 1970")
        return value
    if name == "address":
        if not isinstance(value, Mapping) or not value or not set(value) <= ADDRESS_FIELDS:
            raise ValueError(f"address must be an object with fields among {_list(ADDRESS_FIELDS)}")
        return {field: _text(f"address.{field}", text) for field, text in value.items()}
    return _text(name, value)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_CLAIM_LENGTH:
        raise ValueError(f"{name} must be a text of 1 to {MAX_CLAIM_LENGTH} characters")
    if "\x00" in value:
        raise ValueError(f"{name} must not hold NUL characters")
    return value


def _list(names: frozenset[str]) -> str:
    return ", ".join(sorted(names))
