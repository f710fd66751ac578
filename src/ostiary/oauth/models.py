"""What the authorization server stores, as frozen dataclasses. ORM rows never leave `store/`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
TokenFormat = Literal["jwt", "opaque"]

GRANT_TYPES: Final = frozenset(
    {"authorization_code", "client_credentials", "refresh_token", "password"}
)
AUTH_METHODS: Final = frozenset(
    {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
)


ID_TOKEN_ALGORITHMS: Final = ("RS256", "ES256", "EdDSA")  # RS256 first: OIDC's default
SubjectType = Literal["public", "pairwise"]


@dataclass(frozen=True, kw_only=True)
class ClientOidc:
    """A client's OpenID Connect registration metadata (OpenID Connect Registration §2)."""

    id_token_signed_response_alg: str = "RS256"  # Registration §2: RS256 when not registered
    userinfo_signed_response_alg: str | None = None  # None: UserInfo answers plain JSON
    subject_type: SubjectType = "public"
    sector_identifier: str | None = None  # the host pairwise subjects are computed for
    post_logout_redirect_uris: tuple[str, ...] = ()
    # RFC 7592 §3: the hash of the registration access token of a dynamically registered
    # client (None: the client was made by an operator and is not managed over HTTP)
    registration_token_hash: str | None = None
    # OpenID Connect Back-Channel Logout 1.0 §2.2: where logout tokens are posted, and
    # whether the client needs `sid` in them (it always gets one from a login session)
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    # OpenID Connect Front-Channel Logout 1.0 §2: the page the browser loads in an iframe
    # when a login session ends at /logout, and whether it needs `iss` and `sid` there (it
    # gets both whenever the session has a sid)
    frontchannel_logout_uri: str | None = None
    frontchannel_logout_session_required: bool = False


@dataclass(frozen=True, kw_only=True)
class Client:
    """A registered application. Public clients (`auth_method == "none"`) have no secret."""

    client_id: str
    name: str
    auth_method: AuthMethod
    secret_hash: str | None = None  # see oauth/client_secrets.py; never the secret itself
    redirect_uris: tuple[str, ...] = ()
    grant_types: frozenset[str] = frozenset({"authorization_code", "refresh_token"})
    scopes: frozenset[str] = frozenset()  # what this client may ever be given
    jwks: Mapping[str, Any] | None = None  # public keys for private_key_jwt
    token_format: TokenFormat = "jwt"
    legacy_password_grant: bool = False  # the password grant, only by explicit opt-in
    created_at: int = 0
    oidc: ClientOidc = field(default_factory=ClientOidc)

    @property
    def is_public(self) -> bool:
        return self.auth_method == "none"


@dataclass(frozen=True, kw_only=True)
class Api:
    """A protected resource the server issues tokens for (RFC 8707 `resource`).

    A token requested for it has `identifier` as its audience and at most `scopes`.
    """

    identifier: str  # an absolute URI without a fragment (RFC 8707 §2)
    scopes: frozenset[str]
    created_at: int = 0


@dataclass(frozen=True, kw_only=True)
class User:
    """A resource owner. `password_hash` is an Argon2id PHC string."""

    user_id: str
    username: str
    password_hash: str
    created_at: int = 0
    # OpenID Connect Core §5.1 standard claims (name, email, address, ...), set by the operator
    claims: Mapping[str, Any] = field(default_factory=dict)


ClaimValue = str | int | float | bool


@dataclass(frozen=True, kw_only=True)
class ClaimRequest:
    """One claim asked for by the `claims` request parameter (OpenID Connect Core §5.5.1):
    null (nothing more), or `essential` and the `value` or `values` it should have; `value`
    is held as a one-item `values`."""

    essential: bool = False
    values: tuple[ClaimValue, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class ClaimsRequest:
    """The checked `claims` request parameter (OpenID Connect Core §5.5): the claims asked
    for in UserInfo and in the ID token, by name. Only claims this server can release are
    kept; see `oauth/claims_request.py`."""

    userinfo: Mapping[str, ClaimRequest] = field(default_factory=dict)
    id_token: Mapping[str, ClaimRequest] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AuthorizationCode:
    """An issued code, stored by the hash of its value (RFC 6749 §4.1.2, at most 60 s)."""

    code_hash: str
    grant_id: str  # ties every token this code produces together, for replay revocation
    client_id: str
    user_id: str
    redirect_uri: str
    scope: frozenset[str]
    code_challenge: str  # RFC 7636 S256 only
    resources: tuple[str, ...] = ()  # RFC 8707
    nonce: str | None = None
    auth_time: int = 0
    created_at: int = 0
    expires_at: int = 0
    claims: ClaimsRequest | None = None  # OpenID Connect Core §5.5, kept for the grant
    sid: str | None = None  # the login session it was issued in (Back-Channel Logout §2.1)


@dataclass(frozen=True, kw_only=True)
class CodeConsumption:
    """What `CodeStore.consume` found: the code, and whether it had been redeemed before."""

    code: AuthorizationCode | None
    replayed: bool = False


@dataclass(frozen=True, kw_only=True)
class RefreshToken:
    """A refresh token, stored by hash. Tokens of one `grant_id` form a rotation family."""

    token_hash: str
    grant_id: str
    client_id: str
    user_id: str | None
    scope: frozenset[str]
    resources: tuple[str, ...] = ()
    created_at: int = 0
    expires_at: int = 0
    jkt: str | None = None  # RFC 9449 §5: bound to this DPoP key (public clients)
    auth_time: int = 0
    claims: ClaimsRequest | None = None  # the authorization's `claims` request, for good
    sid: str | None = None  # the login session its grant was made in, kept by every rotation


@dataclass(frozen=True, kw_only=True)
class Rotation:
    """What `TokenStore.rotate_refresh` found.

    `status` is "rotated" (the old token was live and is now spent, the new one stored),
    "reused" (the old token had already been rotated: the family must be revoked),
    or "invalid" (unknown, expired or revoked).
    """

    status: Literal["rotated", "reused", "invalid"]
    previous: RefreshToken | None = None


@dataclass(frozen=True, kw_only=True)
class IssuedAccessToken:
    """An access token the server must be able to find again.

    Opaque tokens are found by `token_id` = hash of the value; JWTs by `token_id` = jti. A JWT
    is recorded when it belongs to a grant (so a revoked grant makes introspection say
    inactive); client_credentials JWTs are not recorded unless revoked.
    """

    token_id: str
    format: Literal["jwt", "opaque"]
    client_id: str
    grant_id: str | None
    subject: str
    scope: frozenset[str]
    audience: tuple[str, ...]
    issued_at: int
    expires_at: int
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Consent:
    """A user's remembered approval of scopes for a client, and of claims asked for one by
    one (the `claims` request parameter) beyond what those scopes release."""

    user_id: str
    client_id: str
    scope: frozenset[str]
    granted_at: int
    claims: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True)
class SigningKey:
    """A server signing key. The private JWK is stored encrypted (`private_jwe`, a JWE).

    Published in the JWKS from `created_at`, signs from `activates_at` until `retires_at`,
    published until `expires_at` (when every token it signed has expired).
    """

    kid: str
    alg: str
    public_jwk: Mapping[str, Any]
    private_jwe: str
    created_at: int
    activates_at: int
    retires_at: int | None = None
    expires_at: int | None = None


@dataclass(frozen=True, kw_only=True)
class AuditEvent:
    """One structured audit record. Never holds a secret or a token."""

    event: str  # e.g. "token.issued", "refresh.reuse_detected", "login.failed"
    at: int
    client_id: str | None = None
    user_id: str | None = None
    grant_id: str | None = None
    address: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Issuance:
    """What a grant writes when it answers, besides its refresh token: the access token the
    server must find again (None for a JWT it need not, see `IssuedAccessToken`) and the
    audit event of the issuance."""

    access: IssuedAccessToken | None
    event: AuditEvent


@dataclass(frozen=True, kw_only=True)
class LoginSession:
    """A person's sign-in at this server (the provider session behind the browser cookie),
    stored by the hash of its id so it can be ended from anywhere: logout, an operator."""

    session_hash: str
    user_id: str
    auth_time: int  # OpenID Connect Core §2: when the password was typed
    created_at: int
    expires_at: int
    # Back-Channel Logout 1.0 §2.1: the session's id as clients see it in ID and logout
    # tokens; random and apart from `session_hash`, so it reveals nothing about the cookie
    sid: str | None = None


@dataclass(frozen=True, kw_only=True)
class PendingLogout:
    """A logout token still to be posted to a client (Back-Channel Logout 1.0 §2.5), kept in
    the store until it is delivered or given up, so it survives a restart."""

    delivery_id: int
    client_id: str
    user_id: str  # no longer a user, perhaps: a deleted user's clients are told too
    sid: str | None
    jti: str  # the same on every attempt, so a client that saw it once can say so
    reason: str  # "logout", "sign-out", "replaced", "expired", "user deleted"
    created_at: int
    attempts: int  # made so far, this one included once claimed


PURGED_TABLES: Final = (
    "authorization_codes",
    "refresh_tokens",
    "access_tokens",
    "revoked_access_tokens",
    "revoked_grants",
    "replay_entries",
    "login_sessions",
    "throttle_hits",
    "rate_counters",
    "rate_penalties",
)


@dataclass(frozen=True, kw_only=True)
class Purged:
    """What one step of `TokenStore.purge_expired` removed: rows by table (every name in
    `PURGED_TABLES`), whether rows may be left that a next step would remove (`more`), and
    whether it stopped because another process is purging the same database (`busy`)."""

    counts: Mapping[str, int] = field(default_factory=dict)
    more: bool = False
    busy: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())
