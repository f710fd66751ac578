"""The grants the token endpoint accepts, by `grant_type` (RFC 6749 §4, OAuth 2.1 §4)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from ..context import Context
from .authorization_code import exchange_authorization_code
from .client_credentials import exchange_client_credentials
from .issuance import GrantRequest
from .password import exchange_password
from .refresh_token import exchange_refresh_token

Grant = Callable[[GrantRequest, Context], Awaitable[dict[str, Any]]]

# No implicit grant (OAuth 2.1 §10.1). A new grant adds a line here.
GRANTS: Final[Mapping[str, Grant]] = {
    "authorization_code": exchange_authorization_code,
    "client_credentials": exchange_client_credentials,
    "refresh_token": exchange_refresh_token,
    "password": exchange_password,
}

__all__ = [
    "GRANTS",
    "Grant",
    "GrantRequest",
    "exchange_authorization_code",
    "exchange_client_credentials",
    "exchange_password",
    "exchange_refresh_token",
]
