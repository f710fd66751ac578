"""OAuth errors as RFC 6749 §5.2 / §4.1.2.1 codes: data only; `server/render.py` makes HTTP."""

from __future__ import annotations

from typing import ClassVar


class OAuthError(Exception):
    """Root of every protocol error the core raises for a bad or refused request."""

    error: ClassVar[str] = "invalid_request"  # wire code, stable
    status: ClassVar[int] = 400
    redirectable: ClassVar[bool] = True  # may be sent to the client's redirect_uri

    def __init__(self, description: str = "", *, detail: str = "") -> None:
        super().__init__(description or self.error)
        self.description = description  # shown to the client (RFC 6749 §5.2 charset)
        self.detail = detail  # logs only: never rendered


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (RFC 6749 §5.2): 401 with a challenge."""

    error = "invalid_client"
    status = 401
    redirectable = False


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource is unknown or not allowed."""

    error = "invalid_target"


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403


class TemporarilyUnavailable(OAuthError):
    """The server cannot answer now but will soon: 503 with Retry-After (RFC 9110 §10.2.3)."""

    error = "temporarily_unavailable"
    status = 503

    def __init__(self, description: str = "", *, retry_after: int = 5, detail: str = "") -> None:
        super().__init__(description, detail=detail)
        self.retry_after = retry_after


class DatabaseUnavailable(TemporarilyUnavailable):
    """The store could not reach its database within the configured timeout.

    Raised by every store operation (refused or lost connections, timeouts, a full pool), so
    every route answers it the same way: 503 with Retry-After, nothing changed, and the next
    request tries the database again."""

    redirectable = False  # the browser gets an error page, not a trip back to the client


class SlowDown(OAuthError):
    """Too many requests; rendered as 429 with Retry-After. `limit` names the limit that
    refused (a metrics label from a closed set: "token", "client_auth", "password")."""

    error = "slow_down"
    status = 429
    redirectable = False

    def __init__(
        self, description: str = "", *, retry_after: int = 1, limit: str = "", detail: str = ""
    ) -> None:
        super().__init__(description, detail=detail)
        self.retry_after = retry_after
        self.limit = limit


class UnregisteredRedirectUri(OAuthError):
    """Never redirect to a URI we did not verify: shown on an error page instead."""

    error = "invalid_request"
    redirectable = False


class UnknownClient(OAuthError):
    """The authorization request names no registered client: shown on an error page."""

    error = "invalid_request"
    redirectable = False


class LoginRequired(OAuthError):
    """OpenID Connect Core §3.1.2.6: `prompt=none`, and the user is not signed in."""

    error = "login_required"


class ConsentRequired(OAuthError):
    """OpenID Connect Core §3.1.2.6: `prompt=none`, and the user has not consented yet."""

    error = "consent_required"


class InvalidDPoPProof(OAuthError):
    """RFC 9449 §5: the DPoP proof is missing where needed, malformed, or does not fit."""

    error = "invalid_dpop_proof"
    redirectable = False


class UseDPoPNonce(OAuthError):
    """RFC 9449 §8: the server wants a proof with this nonce, sent in a `DPoP-Nonce` header."""

    error = "use_dpop_nonce"
    redirectable = False

    def __init__(self, nonce: str) -> None:
        super().__init__("the DPoP proof must carry the nonce from the DPoP-Nonce header")
        self.nonce = nonce


class InvalidRedirectUri(OAuthError):
    """RFC 7591 §3.2.2: a redirect_uri (or post_logout_redirect_uri) may not be registered."""

    error = "invalid_redirect_uri"
    redirectable = False


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2: a client metadata value is invalid or not supported."""

    error = "invalid_client_metadata"
    redirectable = False


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: the bearer token (e.g. an initial or registration access token) is
    missing, malformed, expired or revoked."""

    error = "invalid_token"
    status = 401
    redirectable = False
