"""`ServerConfig`: the protocol core's settings, explicit, with safe defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

SCOPE_DESCRIPTIONS: Final = {
    "openid": "Sign you in with your account",
    "profile": "See your name and profile details",
    "email": "See your email address",
    "address": "See your postal address",
    "phone": "See your phone number",
    "offline_access": "Stay connected when you are not using the app",
}


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    issuer: str  # e.g. "https://auth.example"; no trailing slash, no query or fragment
    access_token_ttl: int = 600
    refresh_token_ttl: int = 30 * 24 * 3600
    code_ttl: int = 60  # RFC 6749 §4.1.2 recommends at most 10 minutes; we allow 60 s
    client_assertion_max_age: int = 300  # private_key_jwt: farthest `exp` accepted
    signing_alg: str = "ES256"  # ES256, RS256 or EdDSA
    key_rotation_overlap: int = 24 * 3600  # a new key is published this long before it signs
    default_audience: str | None = None  # `aud` when no resource is asked; default: issuer
    login_max_failures: int = 5  # per user and per address, inside `login_window`
    login_window: int = 15 * 60  # also the first back-off wait past the budget
    login_backoff_cap: int = 24 * 3600  # the longest wait; failures are remembered this long
    max_request_size: int = 64 * 1024
    # RFC 9449 §8: when set, DPoP proofs at the token endpoint must carry a nonce MACed by it.
    dpop_nonce_secret: bytes | None = field(default=None, repr=False)
    scope_descriptions: dict[str, str] = field(default_factory=lambda: dict(SCOPE_DESCRIPTIONS))
    id_token_ttl: int = 600  # OpenID Connect Core §2 `exp`
    # The secret salt of pairwise subject identifiers (OpenID Connect Core §8.1); the server
    # derives it from its key-encryption secret. Without one, pairwise clients are refused.
    subject_salt: bytes = field(default=b"", repr=False)
    # Dynamic client registration (RFC 7591): initial access tokens are HMACs under this key
    # (derived from the key-encryption secret); without one, only open registration works.
    registration_key: bytes = field(default=b"", repr=False)
    open_registration: bool = False  # anyone may register a client: an explicit choice
    registration_enabled: bool = True

    def __post_init__(self) -> None:
        if not self.issuer or self.issuer.endswith("/") or "?" in self.issuer or "#" in self.issuer:
            raise ValueError(
                "issuer must be an absolute URL with no trailing slash, query or fragment"
            )
        if not 0 < self.code_ttl <= 60:
            raise ValueError("code_ttl must be between 1 and 60 seconds")
        if self.signing_alg not in ("ES256", "RS256", "EdDSA"):
            raise ValueError("signing_alg must be ES256, RS256 or EdDSA")

    @property
    def audience(self) -> str:
        """The access-token audience used when the request names no resource."""
        return self.default_audience or self.issuer
